#!/usr/bin/env python3
"""FAISS (flat, RaBitQ with exact re-scoring, and HNSW), hnswlib and usearch on the vectors and probes frs-index's ANN benchmark exported,
one search thread each: the side-by-side figures of docs/search-at-scale.md.

    FRS_ANN_EXPORT=.cache/ann-1m.bin FRS_ANN_SECTIONS=recall FRS_ANN_PRECISION=f32 \\
        cargo bench -p frs-index --bench ann           # writes the file (vectors, probes, exact top-10s)
    python3 scripts/bench_ann.py .cache/ann-1m.bin [--m 16] [--efc 100] [--ef 16,32,64,96,128,256]
        [--build-threads 2] [--libs faiss-flat,faiss-rabitq,faiss-hnsw,hnswlib,usearch] [--filters] [--probes N]
        [--rerank 5000,7000,10000,15000]

Each probe is searched alone (a 1 x dim batch), as one frs search request is, on one thread
(`faiss.omp_set_num_threads(1)`, `num_threads=1`, `threads=1`); latency is wall time around that call.
Recall@10 is against the exact top-10 frs computed (f32 dot products), so every library is scored
against the same reference; R>=0.80 and R>=0.93 count only the exact top-10 faces whose cosine reaches
similarity 0.80 / 0.93 (cosine 0.30 / 0.42, docs/similarity.md): the matches a caller with that threshold gets;
"R same" only those of the probe's own identity (the person searched for). Graphs are built with --build-threads and cached under .cache/ann-bench/.
With --filters, FAISS HNSW also runs the 10 % and 1 % `dept` filters (IDSelectorBitmap).

Run with a python that lacks the pinned packages, the script makes a venv under .cache/ with them and
re-runs itself there.
"""

import argparse
import os
import struct
import sys
import time

from pinned_venv import reexec_in_venv

PACKAGES = ["numpy==2.4.6", "faiss-cpu==1.15.1", "hnswlib==0.8.0", "usearch==2.26.6"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".cache", "ann-venv")
CACHE = os.path.join(ROOT, ".cache", "ann-bench")


def ready():
    try:
        import faiss  # noqa: F401
        import hnswlib  # noqa: F401
        import numpy  # noqa: F401
        import usearch  # noqa: F401

        return True
    except ImportError:
        return False


def load(path):
    import numpy as np

    with open(path, "rb") as f:
        magic = f.read(8)
        if magic != b"FRSANN01":
            sys.exit(f"{path}: not an frs ANN export")
        n, dim, nq, k = struct.unpack("<4I", f.read(16))
        data = np.fromfile(f, dtype="<f4", count=n * dim).reshape(n, dim)
        queries = np.fromfile(f, dtype="<f4", count=nq * dim).reshape(nq, dim)
        dept = np.fromfile(f, dtype="u1", count=n)
        truth = np.fromfile(f, dtype="<u4", count=3 * nq * k).reshape(3, nq, k)
        identity = np.fromfile(f, dtype="<u4", count=n)
        query_identity = np.fromfile(f, dtype="<u4", count=nq)
    return data, queries, dept, truth, identity, query_identity


def recall_at(found, truth, cosines=None, floor=None):
    """Recall of the exact top-10 rows; with `floor`, only of those whose exact cosine is >= floor."""
    hits = total = 0
    for i, (row, want) in enumerate(zip(found, truth)):
        want = [int(w) for w in want if w != 0xFFFFFFFF]
        if floor is not None:
            want = [w for j, w in enumerate(want) if cosines[i][j] >= floor]
        want = set(want)
        hits += len(want & {int(r) for r in row if r >= 0})
        total += len(want)
    return hits / max(total, 1)


def timed(search, queries):
    """Searches each probe alone; returns (sorted latencies in ms, result rows)."""
    for q in queries[:10]:
        search(q)
    times, rows = [], []
    for q in queries:
        t = time.perf_counter()
        ids = search(q)
        times.append((time.perf_counter() - t) * 1e3)
        rows.append(ids)
    times.sort()
    return times, rows


def pct(times, p):
    return times[round((len(times) - 1) * p)]


COSINES = None
SAME = None  # per probe: the exact top-10 rows of the probe's own identity


def report(lib, label, ef, times, rows, truth, build=None):
    extra = f"  build {build:.1f} s" if build is not None else ""
    r080 = recall_at(rows, truth, COSINES, 0.30) if COSINES is not None and label == "none" else float("nan")
    r093 = recall_at(rows, truth, COSINES, 0.42) if COSINES is not None and label == "none" else float("nan")
    rsame = float("nan")
    if SAME is not None and label == "none":
        found = sum(len(same & {int(r) for r in row}) for row, same in zip(rows, SAME))
        rsame = found / max(sum(len(s) for s in SAME), 1)
    print(
        f"{lib:<12} {label:<10} {ef:>5} {pct(times, 0.5):>8.3f} {pct(times, 0.9):>8.3f} {pct(times, 0.99):>8.3f}"
        f" {recall_at(rows, truth):>9.4f} {r080:>8.4f} {r093:>8.4f} {rsame:>8.4f}{extra}",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--efc", type=int, default=100)
    parser.add_argument("--ef", default="16,32,48,64,96,128,192,256")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--libs", default="faiss-flat,faiss-rabitq,faiss-hnsw,hnswlib,usearch")
    parser.add_argument("--filters", action="store_true")
    parser.add_argument("--probes", type=int, default=0, help="only the first N probes (0: all)")
    parser.add_argument(
        "--rerank", default="5000,7000,10000,15000", help="faiss-rabitq: faces re-scored exactly per probe"
    )
    args = parser.parse_args()
    reexec_in_venv("bench_ann.py", VENV, PACKAGES, ready)

    import faiss
    import hnswlib
    import numpy as np
    import usearch
    from usearch.index import Index as UsearchIndex

    global COSINES, SAME
    data, queries, dept, truth, identity, query_identity = load(args.export)
    if args.probes:
        # The first N probes are the ones `FRS_ANN_QUERIES=N` gives frs (same generator order).
        queries, truth, query_identity = queries[: args.probes], truth[:, : args.probes], query_identity[: args.probes]
    SAME = [
        {int(r) for r in row if r != 0xFFFFFFFF and q != 0xFFFFFFFF and identity[r] == q}
        for row, q in zip(truth[0], query_identity)
    ]
    # Exact cosines of the unfiltered top-10, for the recall of matches above a similarity threshold.
    safe = np.where(truth[0] == 0xFFFFFFFF, 0, truth[0]).astype(np.int64)
    COSINES = np.einsum("qkd,qd->qk", data[safe], queries)
    n, dim = data.shape
    efs = [int(e) for e in args.ef.split(",")]
    libs = args.libs.split(",")
    os.makedirs(CACHE, exist_ok=True)
    key = f"n{n}-m{args.m}-efc{args.efc}"
    print(
        f"{n} x {dim} vectors, {len(queries)} probes; M {args.m}, efConstruction {args.efc}; build threads "
        f"{args.build_threads}, search 1 thread; faiss {faiss.__version__}, hnswlib 0.8.0, usearch {usearch.VERSION_MAJOR}."
        f"{usearch.VERSION_MINOR}.{usearch.VERSION_PATCH}, numpy {np.__version__}"
    )
    print(
        f"{'library':<12} {'filter':<10} {'ef':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'recall@10':>9}"
        f" {'R>=0.80':>8} {'R>=0.93':>8} {'R same':>8}"
    )
    q1 = [q.reshape(1, dim) for q in queries]

    if "faiss-flat" in libs:
        faiss.omp_set_num_threads(1)
        flat = faiss.IndexFlatIP(dim)
        flat.add(data)
        times, rows = timed(lambda q: flat.search(q, 10)[1][0], q1)
        report("faiss-flat", "none", "-", times, rows, truth[0])
        del flat

    if "faiss-rabitq" in libs:
        # FAISS's own RaBitQ (1-bit codes, 4-bit queries as frs) over all faces, its candidates
        # re-scored on the f32 vectors (IndexRefineFlat): the same design as frs's code search.
        faiss.omp_set_num_threads(1)
        base = faiss.IndexRaBitQ(dim, faiss.METRIC_INNER_PRODUCT)
        t = time.perf_counter()
        base.train(data)
        refine = faiss.IndexRefineFlat(base)
        refine.add(data)
        build = time.perf_counter() - t
        for rerank in [int(r) for r in args.rerank.split(",")]:
            params = faiss.IndexRefineSearchParameters(
                k_factor=rerank / 10, base_index_params=faiss.RaBitQSearchParameters(qb=4)
            )
            times, rows = timed(lambda q: refine.search(q, 10, params=params)[1][0], q1)
            report("faiss-rabitq", "none", rerank, times, rows, truth[0], build)
            build = None
        del refine, base

    if "faiss-hnsw" in libs:
        path = os.path.join(CACHE, f"faiss-{key}.index")
        build = None
        if os.path.exists(path):
            index = faiss.read_index(path)
        else:
            faiss.omp_set_num_threads(args.build_threads)
            index = faiss.IndexHNSWFlat(dim, args.m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = args.efc
            t = time.perf_counter()
            index.add(data)
            build = time.perf_counter() - t
            faiss.write_index(index, path)
        faiss.omp_set_num_threads(1)
        for ef in efs:
            params = faiss.SearchParametersHNSW(efSearch=ef)
            times, rows = timed(lambda q: index.search(q, 10, params=params)[1][0], q1)
            report("faiss-hnsw", "none", ef, times, rows, truth[0], build)
            build = None
        if args.filters:
            for f, (label, mask) in enumerate([("10 %", dept < 10), ("1 %", dept == 7)], start=1):
                bitmap = np.packbits(mask, bitorder="little")
                selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
                for ef in efs:
                    params = faiss.SearchParametersHNSW(efSearch=ef, sel=selector)
                    times, rows = timed(lambda q: index.search(q, 10, params=params)[1][0], q1)
                    report("faiss-hnsw", label, ef, times, rows, truth[f])
        del index

    if "hnswlib" in libs:
        path = os.path.join(CACHE, f"hnswlib-{key}.bin")
        index = hnswlib.Index(space="ip", dim=dim)
        build = None
        if os.path.exists(path):
            index.load_index(path, max_elements=n)
        else:
            index.init_index(max_elements=n, ef_construction=args.efc, M=args.m)
            t = time.perf_counter()
            index.add_items(data, np.arange(n), num_threads=args.build_threads)
            build = time.perf_counter() - t
            index.save_index(path)
        for ef in efs:
            index.set_ef(max(ef, 10))
            times, rows = timed(lambda q: index.knn_query(q, k=10, num_threads=1)[0][0], q1)
            report("hnswlib", "none", ef, times, rows, truth[0], build)
            build = None
        del index

    if "usearch" in libs:
        path = os.path.join(CACHE, f"usearch-{key}.usearch")
        index = UsearchIndex(ndim=dim, metric="ip", dtype="f32", connectivity=args.m, expansion_add=args.efc)
        build = None
        if os.path.exists(path):
            index.load(path)
        else:
            t = time.perf_counter()
            index.add(np.arange(n, dtype=np.uint64), data, threads=args.build_threads)
            build = time.perf_counter() - t
            index.save(path)
        for ef in efs:
            index.expansion_search = ef
            times, rows = timed(lambda q: index.search(q, 10, threads=1).keys.astype(np.int64), queries)
            report("usearch", "none", ef, times, rows, truth[0], build)
            build = None


if __name__ == "__main__":
    main()
