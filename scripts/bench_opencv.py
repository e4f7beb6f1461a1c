#!/usr/bin/env python3
"""OpenCV's own face pipeline on a folder of images, one core: the baseline `frs bench --opencv` compares with.

Per image, exactly the work `frs bench` does:
    decode          cv2.imdecode of the file bytes (already in memory; EXIF orientation applied)
    detect          FaceDetectorYN with the ORIGINAL int8 block-quantized YuNet, score/NMS thresholds as
                    frs, input size = image size after frs's own downscale (longer side <= 640; a no-op
                    for LFW), faces smaller than the minimum size dropped
    align, feature  FaceRecognizerSF.alignCrop + feature on the largest face, with the ORIGINAL int8
                    block-quantized SFace

OpenCV 5.0 refuses the original SFace file in FaceRecognizerSF ("empty name can only be used to set
input if there is just one input"): besides `data` the file declares 29 graph inputs that no node
reads (the float weights the quantizer replaced) and lists its initializers as inputs too. The script
writes a copy under .cache/ that declares only `data` (no node, weight or initializer changes) and
loads that.

    python3 scripts/bench_opencv.py [--images ../shared/data/lfw | --list FILE] [--limit 300] [--rounds 3] [--json]

Prints the best round's images/s (decode included) and per-stage milliseconds per image; --json prints
one JSON object instead (what frs bench reads). Images are taken as frs bench takes them: every
.jpg/.jpeg/.png/.bmp under --images, recursively, in byte order of their paths, the first --limit.

Run with a python that lacks the pinned packages, the script makes a venv under .cache/ with them and
re-runs itself there.
"""

import argparse
import json
import os
import sys
import time

from pinned_venv import reexec_in_venv

OPENCV = "opencv-python-headless==5.0.0.93"
NUMPY = "numpy==2.4.6"
ONNX = "onnx==1.23.2"
OPENCV_VERSION = "5.0.0"

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CACHE = os.path.join(ROOT, ".cache", "bench-opencv")
VENV = os.path.join(CACHE, "venv")
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def ensure_packages():
    """Re-executes inside the venv with the pinned packages unless they are importable here."""

    def ready():
        try:
            import cv2
            import numpy  # noqa: F401
            import onnx  # noqa: F401

            return cv2.__version__ == OPENCV_VERSION
        except ImportError:
            return False

    reexec_in_venv("bench_opencv.py", VENV, [OPENCV, NUMPY, ONNX], ready)


def loadable_sface(path):
    """A copy of `path` declaring only the graph inputs a node reads and no initializer provides."""
    import onnx

    model = onnx.load(path)
    graph = model.graph
    read = {name for node in graph.node for name in node.input}
    initializers = {t.name for t in graph.initializer}
    keep = [i for i in graph.input if i.name in read and i.name not in initializers]
    if len(keep) == len(graph.input):
        return path
    del graph.input[:]
    graph.input.extend(keep)
    os.makedirs(CACHE, exist_ok=True)
    out = os.path.join(CACHE, os.path.basename(path).replace(".onnx", ".used-inputs.onnx"))
    onnx.save(model, out)
    return out


def image_paths(folder, limit):
    found = []
    for dirpath, _, files in os.walk(folder):
        for name in files:
            if name.lower().endswith(EXTENSIONS):
                found.append(os.path.join(dirpath, name))
    found.sort(key=os.fsencode)
    return found[:limit]


def detection_size(width, height, max_side):
    """frs's detector input size before padding: the longer side scaled down to max_side, never up."""
    longer = max(width, height)
    if longer <= max_side:
        return width, height
    s = max_side / longer
    return max(1, round(width * s)), max(1, round(height * s))


class OpenCvPipeline:
    def __init__(self, args):
        import cv2
        import numpy

        self.cv2, self.np = cv2, numpy
        self.args = args
        self.size = (args.max_input_side, args.max_input_side)
        self.detector = cv2.FaceDetectorYN.create(
            args.yunet, "", self.size, args.score_threshold, args.nms_threshold, 5000
        )
        self.recognizer = cv2.FaceRecognizerSF.create(loadable_sface(args.sface), "")

    def run(self, data, times):
        """Decode, detect, align and embed one image; adds each stage's seconds to `times`."""
        cv2, np = self.cv2, self.np
        t0 = time.perf_counter()
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        if image is None:
            times["decode"] += t1 - t0
            return False
        height, width = image.shape[:2]
        dw, dh = detection_size(width, height, self.args.max_input_side)
        small = image if (dw, dh) == (width, height) else cv2.resize(image, (dw, dh), interpolation=cv2.INTER_LINEAR)
        if (dw, dh) != self.size:
            self.detector.setInputSize((dw, dh))
            self.size = (dw, dh)
        _, faces = self.detector.detect(small)
        best = None
        if faces is not None:
            sx, sy = width / dw, height / dh
            faces = faces.copy()
            faces[:, 0:14:2] *= sx
            faces[:, 1:14:2] *= sy
            big = faces[(faces[:, 2] >= self.args.min_face_size) & (faces[:, 3] >= self.args.min_face_size)]
            if len(big):
                best = big[int(np.argmax(big[:, 2] * big[:, 3]))]
        t2 = time.perf_counter()
        if best is not None:
            crop = self.recognizer.alignCrop(image, best)
            t3 = time.perf_counter()
            self.recognizer.feature(crop)
            t4 = time.perf_counter()
        else:
            t3 = t4 = t2
        times["decode"] += t1 - t0
        times["detect"] += t2 - t1
        times["align"] += t3 - t2
        times["feature"] += t4 - t3
        return best is not None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "data", "lfw"))
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--yunet", default=os.path.join(ROOT, "assets/downloads/models/face_detection_yunet_2023mar_int8bq.onnx")
    )
    parser.add_argument(
        "--sface", default=os.path.join(ROOT, "assets/downloads/models/face_recognition_sface_2021dec_int8bq.onnx")
    )
    parser.add_argument("--score-threshold", type=float, default=0.7)
    parser.add_argument("--nms-threshold", type=float, default=0.3)
    parser.add_argument("--min-face-size", type=float, default=80.0)
    parser.add_argument("--max-input-side", type=int, default=640)
    parser.add_argument("--json", action="store_true", help="print one JSON object (for frs bench)")
    parser.add_argument("--list", help="file naming the images to use, one path a line (instead of --images)")
    args = parser.parse_args()
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    ensure_packages()

    import cv2

    cv2.setNumThreads(1)
    for path in (args.yunet, args.sface):
        if not os.path.exists(path):
            sys.exit(f"bench_opencv.py: {path} is missing (run scripts/setup.sh)")
    if args.list:
        with open(args.list, encoding="utf-8") as f:
            paths = [line.rstrip("\n") for line in f if line.strip()][: args.limit]
    else:
        paths = image_paths(args.images, args.limit)
    if not paths:
        sys.exit(f"bench_opencv.py: no images under {args.images}")
    blobs = []
    for p in paths:
        with open(p, "rb") as f:
            blobs.append(f.read())

    pipeline = OpenCvPipeline(args)
    warm = {"decode": 0.0, "detect": 0.0, "align": 0.0, "feature": 0.0}
    for data in blobs[:3]:
        pipeline.run(data, warm)

    best = None
    for _ in range(max(1, args.rounds)):
        times = dict.fromkeys(warm, 0.0)
        start = time.perf_counter()
        faces = sum(pipeline.run(data, times) for data in blobs)
        seconds = time.perf_counter() - start
        if best is None or seconds < best["seconds"]:
            best = {"seconds": seconds, "faces": faces, "times": times}

    n = len(blobs)
    result = {
        "opencv": cv2.__version__,
        "images": n,
        "faces": best["faces"],
        "seconds": best["seconds"],
        "images_per_second": n / best["seconds"],
        "ms_per_image": {k: v * 1e3 / n for k, v in best["times"].items()},
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"OpenCV {result['opencv']}, one thread: {n} images ({result['faces']} with a face), best of {args.rounds}")
    for stage, ms in result["ms_per_image"].items():
        print(f"  {stage:<8} {ms:8.2f} ms/image")
    print(f"  {result['images_per_second']:.1f} images/s (decode included)")


if __name__ == "__main__":
    main()
