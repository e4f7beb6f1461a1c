//! Property tests of the graph index: graph search with a large `ef` agrees with exact search,
//! filtered graph search never returns a face the filter rejects, inserts/removes interleaved with
//! searches keep reads and searches consistent, compaction and the graph file keep the answers, and
//! a corrupted, truncated or other-version graph file is refused.

use std::collections::{HashMap, HashSet};

use frs_index::{
    AnnSettings, FaceEntry, FaceId, FaceSetIndex, FieldValue, FieldValues, Filter, GraphFileError, Hit, IndexSettings,
    Precision, Schema, SearchParams, SearchPath,
};
use proptest::prelude::*;
use serde_json::json;

fn schema() -> Schema {
    Schema::parse(&json!({"dept": {"type": "integer"}, "ok": {"type": "boolean"}})).expect("schema")
}

/// Graph always (no thresholds), a small `m` so lists fill and get pruned, a large `ef`.
fn graph_settings(precision: Precision, m: usize) -> IndexSettings {
    IndexSettings {
        precision,
        ann: Some(AnnSettings { exact_below: 0, graph_min_permille: 0, m, ef_construction: 64, ef_search: 1000 }),
    }
}

fn unit(seed: u64, dim: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v: Vec<f32> = (0..dim)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn id(i: usize) -> FaceId {
    FaceId::parse(&format!("{i:0>8}")).expect("id")
}

fn entry(i: usize, dept: i64) -> FaceEntry {
    FaceEntry {
        face_id: id(i),
        external_image_id: format!("img-{}", i % 7).into(),
        bbox: [0; 4],
        fields: FieldValues(vec![Some(FieldValue::Integer(dept)), Some(FieldValue::Boolean(i.is_multiple_of(3)))]),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert { i: usize, dept: i64 },
    Remove { i: usize },
    Update { i: usize, dept: i64 },
    Search { seed: u64, top_n: usize, filter: Option<usize> },
}

const FILTERS: [&str; 5] =
    ["dept:[0 TO 2]", "dept:1", "!ok:true", "dept:[3 TO *] || ok:true", "external_image_id:img-3"];

fn ops(max_id: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            6 => (0..max_id, 0i64..5).prop_map(|(i, dept)| Op::Insert { i, dept }),
            2 => (0..max_id).prop_map(|i| Op::Remove { i }),
            1 => (0..max_id, 0i64..5).prop_map(|(i, dept)| Op::Update { i, dept }),
            2 => (any::<u64>(), 1usize..30, proptest::option::of(0..FILTERS.len()))
                .prop_map(|(seed, top_n, filter)| Op::Search { seed, top_n, filter }),
        ],
        50..400,
    )
}

/// Runs the ops on a graph index and on an exact twin, checking every search and the reads.
fn run(ops: &[Op], dim: usize, precision: Precision, m: usize) {
    let schema = schema();
    let mut graph = FaceSetIndex::with_settings(schema.clone(), dim, graph_settings(precision, m));
    let mut exact = FaceSetIndex::with_settings(schema.clone(), dim, IndexSettings { precision, ann: None });
    let filters: Vec<Filter> = FILTERS.iter().map(|f| Filter::parse(f, &schema).expect("filter")).collect();
    for op in ops {
        match *op {
            Op::Insert { i, dept } => {
                let feature = unit(i as u64, dim);
                assert_eq!(
                    graph.insert(entry(i, dept), &feature).is_ok(),
                    exact.insert(entry(i, dept), &feature).is_ok()
                );
            }
            Op::Remove { i } => assert_eq!(graph.remove(id(i)), exact.remove(id(i))),
            Op::Update { i, dept } => {
                let fields = FieldValues(vec![Some(FieldValue::Integer(dept)), None]);
                assert_eq!(graph.update(id(i), None, Some(fields.clone())), exact.update(id(i), None, Some(fields)));
            }
            Op::Search { seed, top_n, filter } => {
                let query = unit(seed, dim);
                let filter = filter.map(|f| &filters[f]);
                check_search(&graph, &exact, &query, top_n, filter);
            }
        }
    }
    check_reads(&graph, &exact, &filters);
    // Compaction keeps every answer.
    graph.compact();
    assert_eq!(graph.tombstones(), 0);
    check_reads(&graph, &exact, &filters);
    for seed in 0..5 {
        check_search(&graph, &exact, &unit(1000 + seed, dim), 10, None);
        check_search(&graph, &exact, &unit(2000 + seed, dim), 10, Some(&filters[seed as usize % filters.len()]));
    }
}

fn check_search(graph: &FaceSetIndex, exact: &FaceSetIndex, query: &[f32], top_n: usize, filter: Option<&Filter>) {
    let params = SearchParams { top_n, min_cosine: -1.0, filter, sort: &[] };
    // An empty candidate set needs no graph.
    if filter.map_or(!graph.is_empty(), |f| !graph.select(f).is_empty()) {
        assert_eq!(graph.search_path(filter), SearchPath::Graph);
    }
    let got = graph.search(query, &params);
    let want = exact.search(query, &params);
    assert_eq!(graph.graph_unreachable(), 0, "every node reachable");
    // ef (1000) exceeds the set: the graph finds every reachable face, scored as exact search scores it.
    assert_eq!(got, want, "filter {filter:?}");
    if let Some(filter) = filter {
        for hit in &got {
            let (entry, _) = graph.get(hit.face_id).expect("a hit is present");
            assert!(filter.matches(entry), "hit {} fails the filter", hit.face_id);
        }
    }
}

fn check_reads(graph: &FaceSetIndex, exact: &FaceSetIndex, filters: &[Filter]) {
    assert_eq!(graph.len(), exact.len());
    for i in 0..64 {
        let (g, e) = (graph.get(id(i)), exact.get(id(i)));
        assert_eq!(g.as_ref().map(|(e, f)| (*e, f.to_vec())), e.as_ref().map(|(e, f)| (*e, f.to_vec())));
    }
    for filter in filters {
        let (mut g, mut e) = (graph.select(filter), exact.select(filter));
        g.sort();
        e.sort();
        assert_eq!(g, e);
    }
    let (mut g, mut e) = (graph.with_external_image_id("img-3"), exact.with_external_image_id("img-3"));
    g.sort();
    e.sort();
    assert_eq!(g, e);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn graph_search_with_large_ef_is_exact_search(ops in ops(64), dim in prop_oneof![Just(8usize), Just(24)], m in 4usize..9) {
        run(&ops, dim, Precision::F32, m);
    }

    #[test]
    fn compact_precisions_agree_with_their_own_exact_search(ops in ops(48), f16 in any::<bool>()) {
        run(&ops, 16, if f16 { Precision::F16 } else { Precision::I8 }, 4);
    }
}

fn filled(settings: IndexSettings, n: usize, dim: usize) -> FaceSetIndex {
    let mut index = FaceSetIndex::with_settings(schema(), dim, settings);
    for i in 0..n {
        index.insert(entry(i, (i % 5) as i64), &unit(i as u64, dim)).expect("insert");
    }
    index
}

fn answers(index: &FaceSetIndex, dim: usize) -> Vec<Vec<Hit>> {
    let params = SearchParams { top_n: 10, min_cosine: -1.0, filter: None, sort: &[] };
    (0..20).map(|s| index.search(&unit(5000 + s, dim), &params)).collect()
}

#[test]
fn graph_file_round_trip_gives_the_same_answers_in_any_load_order() {
    let dim = 16;
    let settings = IndexSettings {
        precision: Precision::F32,
        ann: Some(AnnSettings { exact_below: 0, ef_search: 24, m: 6, ..AnnSettings::default() }),
    };
    let mut index = filled(settings, 600, dim);
    index.remove(id(5));
    let mut file = Vec::new();
    index.save_graph(&mut file).expect("save");

    // Load in reverse order, the graph deferred as at a restart.
    let mut loaded = FaceSetIndex::with_settings(schema(), dim, settings);
    loaded.defer_graph();
    for i in (0..600).rev().filter(|&i| i != 5) {
        loaded.insert(entry(i, (i % 5) as i64), &unit(i as u64, dim)).expect("insert");
    }
    assert_eq!(loaded.search_path(None), SearchPath::Exact, "exact while the graph is not attached");
    let load = loaded.load_graph(file.as_slice()).expect("load");
    assert_eq!((load.saved, load.attached, load.pending), (599, 599, 0));
    assert_eq!(loaded.search_path(None), SearchPath::Graph);
    index.compact();
    assert_eq!(answers(&loaded, dim), answers(&index, dim), "same graph, same answers (ef 24: not exhaustive)");

    // A face added and one removed since the save: the removed one is dropped, the new one linked.
    let mut changed = FaceSetIndex::with_settings(schema(), dim, settings);
    changed.defer_graph();
    for i in (0..601).filter(|&i| i != 5 && i != 7) {
        changed.insert(entry(i, (i % 5) as i64), &unit(i as u64, dim)).expect("insert");
    }
    let load = changed.load_graph(file.as_slice()).expect("load");
    assert_eq!((load.saved, load.attached, load.pending), (599, 598, 1));
    assert_eq!(changed.search_path(None), SearchPath::Exact, "exact until the pending face is linked");
    changed.build_graph(2);
    assert_eq!(changed.pending(), 0);
    let params = SearchParams { top_n: 1, min_cosine: -1.0, filter: None, sort: &[] };
    assert_eq!(changed.search(&unit(600, dim), &params)[0].face_id, id(600));
}

#[test]
fn a_corrupt_truncated_or_foreign_graph_file_is_refused() {
    let dim = 8;
    let settings = graph_settings(Precision::F32, 4);
    let index = filled(settings, 200, dim);
    let mut file = Vec::new();
    index.save_graph(&mut file).expect("save");
    let fresh = || {
        let mut f = FaceSetIndex::with_settings(schema(), dim, settings);
        f.defer_graph();
        for i in 0..200 {
            f.insert(entry(i, 0), &unit(i as u64, dim)).expect("insert");
        }
        f
    };
    assert!(fresh().load_graph(file.as_slice()).is_ok());
    // Every single flipped byte is caught (by a check or the CRC), and leaves the index unchanged.
    for at in (0..file.len()).step_by(7) {
        let mut bad = file.clone();
        bad[at] ^= 0x20;
        let mut f = fresh();
        assert!(f.load_graph(bad.as_slice()).is_err(), "flipped byte {at} accepted");
        assert_eq!(f.pending(), 200, "refused load left the index as it was");
    }
    assert!(matches!(fresh().load_graph(&file[..file.len() - 1]), Err(GraphFileError::Corrupt(_))));
    assert!(matches!(fresh().load_graph(&file[..30]), Err(GraphFileError::Corrupt(_))));
    let mut longer = file.clone();
    longer.push(0);
    assert!(matches!(fresh().load_graph(longer.as_slice()), Err(GraphFileError::Corrupt(_))));
    let mut version = file.clone();
    version[8] = 2;
    assert!(matches!(fresh().load_graph(version.as_slice()), Err(GraphFileError::UnsupportedVersion { found: 2 })));
    assert!(matches!(fresh().load_graph(&b"PNG\x89...."[..]), Err(GraphFileError::NotAGraphFile)));
    let mut other_m = FaceSetIndex::with_settings(schema(), dim, graph_settings(Precision::F32, 5));
    assert!(matches!(other_m.load_graph(file.as_slice()), Err(GraphFileError::Mismatch(_))));
    let mut other_dim = FaceSetIndex::with_settings(schema(), dim + 1, settings);
    assert!(matches!(other_dim.load_graph(file.as_slice()), Err(GraphFileError::Mismatch(_))));
    let mut no_graph = FaceSetIndex::new(schema(), dim);
    assert!(matches!(no_graph.load_graph(file.as_slice()), Err(GraphFileError::NoGraph)));
    assert!(matches!(no_graph.save_graph(Vec::new()), Err(GraphFileError::NoGraph)));
}

#[test]
fn thresholds_choose_the_path_by_size_and_filter_selectivity() {
    let dim = 8;
    let settings = IndexSettings {
        precision: Precision::F32,
        ann: Some(AnnSettings { exact_below: 500, graph_min_permille: 100, ..AnnSettings::default() }),
    };
    let mut index = filled(settings, 499, dim);
    assert_eq!(index.search_path(None), SearchPath::Exact, "below exact_below");
    index.insert(entry(499, 1), &unit(499, dim)).expect("insert");
    assert_eq!(index.search_path(None), SearchPath::Graph);
    let s = schema();
    // dept:[0 TO 3] matches 400 of 500 (< exact_below): exact; with exact_below 100 it is 80 %: graph.
    let wide = Filter::parse("dept:[0 TO 3]", &s).expect("filter");
    assert_eq!(index.search_path(Some(&wide)), SearchPath::Exact);
    index.set_ann_settings(AnnSettings { exact_below: 100, graph_min_permille: 100, ..AnnSettings::default() });
    assert_eq!(index.search_path(Some(&wide)), SearchPath::Graph);
    // 1 face in 500 = 0.2 % < 10 %: exact.
    let narrow = Filter::parse("face_id:00000003", &s).expect("filter");
    assert_eq!(index.search_path(Some(&narrow)), SearchPath::Exact);
    // Deferred: exact until built.
    index.defer_graph();
    assert_eq!(index.search_path(None), SearchPath::Exact);
    index.build_graph(1);
    assert_eq!(index.search_path(None), SearchPath::Graph);
}

#[test]
fn writers_and_readers_share_the_index_behind_a_rwlock() {
    let dim = 16;
    let settings = IndexSettings {
        precision: Precision::F16,
        ann: Some(AnnSettings { exact_below: 0, ef_search: 64, m: 8, ..AnnSettings::default() }),
    };
    let shared = std::sync::RwLock::new(filled(settings, 300, dim));
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 300..600 {
                shared.write().expect("lock").insert(entry(i, 1), &unit(i as u64, dim)).expect("insert");
                if i % 3 == 0 {
                    assert!(shared.write().expect("lock").remove(id(i - 150)));
                }
            }
        });
        for round in 0..200u64 {
            let index = shared.read().expect("lock");
            let live: HashSet<FaceId> = (0..600).map(id).filter(|&f| index.get(f).is_some()).collect();
            let params = SearchParams { top_n: 10, min_cosine: -1.0, filter: None, sort: &[] };
            for hit in index.search(&unit(round, dim), &params) {
                assert!(live.contains(&hit.face_id), "a removed face was returned");
            }
        }
    });
    let index = shared.into_inner().expect("lock");
    assert_eq!(index.len(), 600 - 100);
    let by_id: HashMap<FaceId, usize> = (0..600).map(|i| (id(i), i)).collect();
    // Every live face finds itself first (its own feature as the probe).
    let params = SearchParams { top_n: 1, min_cosine: -1.0, filter: None, sort: &[] };
    for i in (0..600).filter(|i| index.get(id(*i)).is_some()).step_by(5) {
        let probe = index.get(id(i)).map(|(_, f)| f.to_vec()).expect("present");
        let hit = index.search(&probe, &params)[0];
        assert_eq!(by_id[&hit.face_id], i);
    }
}

#[test]
fn a_graph_built_in_steps_between_inserts_links_every_face_and_matches_exact_search() {
    let dim = 16;
    let settings = graph_settings(Precision::F32, 8);
    let mut index = FaceSetIndex::with_settings(schema(), dim, settings);
    index.defer_graph();
    for i in 0..300 {
        index.insert(entry(i, (i % 5) as i64), &unit(i as u64, dim)).expect("insert");
    }
    let mut next = 300;
    let mut linked = 0;
    while index.pending() > 0 {
        assert_eq!(index.search_path(None), SearchPath::Exact, "exact while faces are pending");
        if next < 360 {
            // Writers go on between steps: deferred inserts only append.
            index.insert(entry(next, 1), &unit(next as u64, dim)).expect("insert");
            next += 1;
        }
        let before = index.pending();
        let step = index.build_graph_part(2, 40);
        assert!(step > 0 && step <= 40 && index.pending() == before - step, "{step} of {before}");
        linked += step;
    }
    assert_eq!(linked, next);
    assert_eq!(index.search_path(None), SearchPath::Graph);
    assert_eq!(index.graph_unreachable(), 0);
    // Deferral ended: the next insert is linked at once.
    index.insert(entry(next, 2), &unit(next as u64, dim)).expect("insert");
    assert_eq!(index.pending(), 0);
    let mut exact = FaceSetIndex::new(schema(), dim);
    for i in 0..=next {
        let dept = if i < 300 {
            (i % 5) as i64
        } else if i < next {
            1
        } else {
            2
        };
        exact.insert(entry(i, dept), &unit(i as u64, dim)).expect("insert");
    }
    assert_eq!(answers(&index, dim), answers(&exact, dim));
}
