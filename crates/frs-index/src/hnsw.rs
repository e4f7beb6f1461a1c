//! A hierarchical navigable small-world graph (Malkov & Yashunin, arXiv:1603.09320) over the slots of
//! one face set: the approximate index of large sets.
//!
//! Nodes are slots of the face set; the graph holds only links, the vectors stay in
//! [`crate::vectors::Vectors`] and are read through a [`Space`]. Layer 0 keeps up to `2·m` links per
//! node in one flat array (`count` then the links, a fixed stride); upper layers (about 1 node in `m`)
//! keep up to `m` links per layer in a map. Neighbours are chosen with the paper's heuristic
//! (a candidate is kept only if it is closer to the node than to every neighbour kept so far), as
//! hnswlib does.
//!
//! Links are `AtomicU32`s and each node has a spin lock, so [`Graph::link_pending`] links many
//! nodes from several threads at once (bulk builds at load). Everything else is `&mut self` or
//! read-only: the face set's owner serialises writers. A reader racing a parallel build may read a
//! list mid-update; every value it can see is a valid node id, so that only affects the route taken.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::io::{self, Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering as Atomic};

use crate::face_id::FaceId;
use crate::kernel::Kernel;
use crate::vectors::Vectors;

/// Level of a node that is not linked into the graph yet.
pub(crate) const UNLINKED: u8 = u8::MAX;
/// Highest level drawn (a 10-million-node graph with m = 16 reaches ~6).
const MAX_LEVEL: u8 = 24;
/// Nodes a build thread takes at a time.
const BUILD_CHUNK: usize = 32;

/// A node and its score for the query (higher is closer).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored {
    pub(crate) sim: f32,
    pub(crate) node: u32,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    /// Greater = closer: by score, then by the smaller node.
    fn cmp(&self, other: &Self) -> Ordering {
        self.sim.total_cmp(&other.sim).then(other.node.cmp(&self.node))
    }
}

/// The vectors the graph is built over, and how to score them.
#[derive(Clone, Copy)]
pub(crate) struct Space<'a> {
    pub(crate) vectors: &'a Vectors,
    pub(crate) kernel: Kernel,
    pub(crate) dim: usize,
}

impl Space<'_> {
    #[inline]
    fn score(&self, query: &[f32], node: u32) -> f32 {
        self.vectors.score(self.kernel, query, node as usize)
    }
}

/// Generation-tagged visited marks, one byte per node, reused across searches.
#[derive(Default)]
pub(crate) struct Visited {
    tags: Vec<u8>,
    generation: u8,
}

impl Visited {
    fn reset(&mut self, nodes: usize) {
        if self.tags.len() < nodes {
            self.tags.resize(nodes, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.tags.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `node`; false if it already was.
    #[inline]
    fn insert(&mut self, node: u32) -> bool {
        let tag = &mut self.tags[node as usize];
        if *tag == self.generation {
            false
        } else {
            *tag = self.generation;
            true
        }
    }
}

/// Scratch buffers of one search or insert.
#[derive(Default)]
pub(crate) struct Scratch {
    visited: Visited,
    links: Vec<u32>,
    fresh: Vec<u32>,
}

/// The graph over `len()` nodes.
pub(crate) struct Graph {
    m: usize,
    m0: usize,
    ef_construction: usize,
    /// Layer 0: node `i` owns `links0[i·(1+m0)..]`, its count then up to `m0` links.
    links0: Vec<AtomicU32>,
    /// Levels 1..=level of nodes above layer 0: `(1+m)` words per level, level 1 first.
    upper: HashMap<u32, Box<[AtomicU32]>>,
    levels: Vec<u8>,
    locks: Vec<AtomicU8>,
    /// Layer-0 in-degree of each node: a shrink never drops a node's last in-link if it can drop
    /// another, so nodes stay reachable.
    indegree: Vec<AtomicU32>,
    entry: Option<u32>,
    max_level: u8,
    rng: u64,
    unlinked: usize,
    scratch: Mutex<Vec<Scratch>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("m", &self.m)
            .field("nodes", &self.levels.len())
            .field("unlinked", &self.unlinked)
            .field("max_level", &self.max_level)
            .finish_non_exhaustive()
    }
}

impl Graph {
    pub(crate) fn new(m: usize, ef_construction: usize) -> Graph {
        let m = m.clamp(2, 127);
        Graph {
            m,
            m0: 2 * m,
            ef_construction: ef_construction.max(m),
            links0: Vec::new(),
            upper: HashMap::new(),
            levels: Vec::new(),
            locks: Vec::new(),
            indegree: Vec::new(),
            entry: None,
            max_level: 0,
            rng: 0x853c_49e6_748f_ea9b,
            unlinked: 0,
            scratch: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn set_ef_construction(&mut self, ef_construction: usize) {
        self.ef_construction = ef_construction.max(self.m);
    }

    pub(crate) fn len(&self) -> usize {
        self.levels.len()
    }

    /// Nodes not linked yet (searching the graph would miss them).
    pub(crate) fn unlinked(&self) -> usize {
        self.unlinked
    }

    /// Appends an unlinked node (the next slot).
    pub(crate) fn push_node(&mut self) {
        let stride = 1 + self.m0;
        crate::index::grow(&mut self.links0, stride, 256 * stride);
        self.links0.extend((0..stride).map(|_| AtomicU32::new(0)));
        crate::index::grow(&mut self.levels, 1, 256);
        self.levels.push(UNLINKED);
        crate::index::grow(&mut self.locks, 1, 256);
        self.locks.push(AtomicU8::new(0));
        crate::index::grow(&mut self.indegree, 1, 256);
        self.indegree.push(AtomicU32::new(0));
        self.unlinked += 1;
    }

    pub(crate) fn reserve_exact(&mut self, nodes: usize) {
        self.links0.reserve_exact(nodes * (1 + self.m0));
        self.levels.reserve_exact(nodes);
        self.locks.reserve_exact(nodes);
        self.indegree.reserve_exact(nodes);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let upper: usize = self.upper.values().map(|b| b.len() * 4).sum();
        // The map: (u32, Box) = 24-byte buckets at 7/8 load, one control byte each.
        let map = self.upper.capacity() * 8 / 7 * 25;
        let scratch: usize = self
            .scratch
            .lock()
            .map(|pool| {
                pool.iter().map(|s| s.visited.tags.capacity() + 4 * (s.links.capacity() + s.fresh.capacity())).sum()
            })
            .unwrap_or(0);
        self.links0.capacity() * 4
            + upper
            + map
            + self.levels.capacity()
            + self.locks.capacity()
            + self.indegree.capacity() * 4
            + scratch
    }

    fn take_scratch(&self) -> Scratch {
        self.scratch.lock().ok().and_then(|mut pool| pool.pop()).unwrap_or_default()
    }

    fn give_scratch(&self, scratch: Scratch) {
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push(scratch);
        }
    }

    /// Words of `node`'s list on `layer` (count first); empty when the node has no such layer.
    #[inline]
    fn list(&self, node: u32, layer: u8) -> &[AtomicU32] {
        if layer == 0 {
            let stride = 1 + self.m0;
            &self.links0[node as usize * stride..(node as usize + 1) * stride]
        } else {
            let stride = 1 + self.m;
            match self.upper.get(&node) {
                Some(words) if words.len() >= layer as usize * stride => {
                    &words[(layer as usize - 1) * stride..layer as usize * stride]
                }
                _ => &[],
            }
        }
    }

    /// Copies `node`'s links on `layer` into `out`.
    #[inline]
    fn read_links(&self, node: u32, layer: u8, out: &mut Vec<u32>) {
        out.clear();
        let list = self.list(node, layer);
        if let Some((count, links)) = list.split_first() {
            let count = (count.load(Atomic::Relaxed) as usize).min(links.len());
            out.extend(links[..count].iter().map(|l| l.load(Atomic::Relaxed)));
        }
    }

    /// Replaces `node`'s list on `layer` (the caller holds the node's lock or `&mut self`).
    fn write_links(&self, node: u32, layer: u8, links: impl ExactSizeIterator<Item = u32>) {
        let list = self.list(node, layer);
        let Some((count, slots)) = list.split_first() else { return };
        if layer == 0 {
            let old = (count.load(Atomic::Relaxed) as usize).min(slots.len());
            for slot in &slots[..old] {
                self.indegree[slot.load(Atomic::Relaxed) as usize].fetch_sub(1, Atomic::Relaxed);
            }
        }
        let n = links.len().min(slots.len());
        for (slot, link) in slots.iter().zip(links) {
            slot.store(link, Atomic::Relaxed);
            if layer == 0 {
                self.indegree[link as usize].fetch_add(1, Atomic::Relaxed);
            }
        }
        count.store(n as u32, Atomic::Release);
    }

    fn indegree(&self, node: u32) -> u32 {
        self.indegree[node as usize].load(Atomic::Relaxed)
    }

    fn lock(&self, node: u32) -> NodeLock<'_> {
        let lock = &self.locks[node as usize];
        while lock.compare_exchange_weak(0, 1, Atomic::Acquire, Atomic::Relaxed).is_err() {
            std::hint::spin_loop();
        }
        NodeLock(lock)
    }

    /// A level drawn as ⌊-ln(U)/ln(m)⌋ (the paper's mL = 1/ln m), from a fixed-seed generator so
    /// builds are reproducible.
    fn draw_level(&mut self) -> u8 {
        // SplitMix64.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let uniform = ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let level = (-uniform.ln() / (self.m as f64).ln()).floor();
        level.min(f64::from(MAX_LEVEL)) as u8
    }

    fn set_level(&mut self, node: u32, level: u8) {
        self.levels[node as usize] = level;
        if level > 0 {
            let words = level as usize * (1 + self.m);
            self.upper.insert(node, (0..words).map(|_| AtomicU32::new(0)).collect());
        } else {
            self.upper.remove(&node);
        }
    }

    /// Links one pending node (an insert). `usable` tells which nodes may become neighbours (not
    /// deleted ones).
    pub(crate) fn link_one(&mut self, space: Space<'_>, node: u32, usable: &(impl Fn(u32) -> bool + Sync)) {
        debug_assert_eq!(self.levels[node as usize], UNLINKED);
        let level = self.draw_level();
        self.set_level(node, level);
        self.unlinked -= 1;
        match self.entry {
            None => {
                self.entry = Some(node);
                self.max_level = level;
            }
            Some(entry) => {
                let mut scratch = self.take_scratch();
                self.link(space, node, entry, self.max_level, usable, &mut scratch);
                self.give_scratch(scratch);
                if level > self.max_level {
                    self.entry = Some(node);
                    self.max_level = level;
                }
            }
        }
    }

    /// Links the first `limit` pending nodes (by slot), on `threads` threads (1 = this one).
    pub(crate) fn link_pending(
        &mut self,
        space: Space<'_>,
        usable: &(impl Fn(u32) -> bool + Sync),
        threads: usize,
        limit: usize,
    ) {
        let pending: Vec<u32> =
            (0..self.levels.len() as u32).filter(|&n| self.levels[n as usize] == UNLINKED).take(limit).collect();
        if pending.is_empty() {
            return;
        }
        let mut top: Option<(u32, u8)> = None;
        for &node in &pending {
            let level = self.draw_level();
            self.set_level(node, level);
            if top.is_none_or(|(_, l)| level > l) {
                top = Some((node, level));
            }
        }
        self.unlinked -= pending.len();
        let mut rest = pending;
        // A node above the current top level becomes the entry point first, alone.
        if let Some((node, level)) = top
            && (self.entry.is_none() || level > self.max_level)
        {
            if let Some(entry) = self.entry {
                let mut scratch = self.take_scratch();
                self.link(space, node, entry, self.max_level, usable, &mut scratch);
                self.give_scratch(scratch);
            }
            self.entry = Some(node);
            self.max_level = level;
            rest.retain(|&n| n != node);
        }
        let Some(entry) = self.entry else { return };
        let max_level = self.max_level;
        let this = &*self;
        let next = AtomicUsize::new(0);
        // Small batches (a stepwise build links a few dozen nodes at a time) still use every thread.
        let chunk = BUILD_CHUNK.min(rest.len().div_ceil(2 * threads.max(1))).max(1);
        let work = |scratch: &mut Scratch| {
            loop {
                let start = next.fetch_add(chunk, Atomic::Relaxed);
                if start >= rest.len() {
                    break;
                }
                for &node in &rest[start..(start + chunk).min(rest.len())] {
                    this.link(space, node, entry, max_level, usable, scratch);
                }
            }
        };
        if threads <= 1 || rest.len() < 2 * threads {
            let mut scratch = this.take_scratch();
            work(&mut scratch);
            this.give_scratch(scratch);
        } else {
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        let mut scratch = this.take_scratch();
                        work(&mut scratch);
                        this.give_scratch(scratch);
                    });
                }
            });
        }
    }

    /// Inserts `node` (its level already set) below the entry point: the paper's INSERT.
    fn link(
        &self,
        space: Space<'_>,
        node: u32,
        entry: u32,
        max_level: u8,
        usable: &(impl Fn(u32) -> bool + Sync),
        scratch: &mut Scratch,
    ) {
        let level = self.levels[node as usize];
        let query = space.vectors.row(node as usize, space.dim);
        let mut nearest = Scored { sim: space.score(&query, entry), node: entry };
        for layer in (level.saturating_add(1)..=max_level).rev() {
            nearest = self.greedy(space, &query, nearest, layer, &mut scratch.links);
        }
        let mut entries = vec![nearest];
        for layer in (0..=level.min(max_level)).rev() {
            scratch.visited.reset(self.len());
            let found = self.search_layer(space, &query, &entries, self.ef_construction, layer, scratch, &|n| {
                n != node && usable(n)
            });
            let mut candidates: Vec<Scored> = found.into_iter().map(|Reverse(s)| s).collect();
            candidates.sort_unstable_by(|a, b| b.cmp(a));
            let max = if layer == 0 { self.m0 } else { self.m };
            let selected = self.select(space, &candidates, max);
            {
                let _guard = self.lock(node);
                self.write_links(node, layer, selected.iter().map(|s| s.node));
            }
            for s in &selected {
                self.add_link(space, s.node, node, s.sim, layer, max, &mut scratch.links);
            }
            if layer == 0
                && self.indegree(node) == 0
                && let Some(nearest) = selected.first()
            {
                // Every neighbour dropped the new node: its nearest one links it in place of its
                // farthest link that has another in-link.
                let _guard = self.lock(nearest.node);
                self.read_links(nearest.node, 0, &mut scratch.links);
                if let Some(i) = scratch.links.iter().rposition(|&l| self.indegree(l) >= 2) {
                    scratch.links[i] = node;
                    let links = std::mem::take(&mut scratch.links);
                    self.write_links(nearest.node, 0, links.iter().copied());
                    scratch.links = links;
                }
            }
            if !candidates.is_empty() {
                entries = candidates;
            }
        }
    }

    /// Adds `new` (score `sim` to `node`) to `node`'s list on `layer`, shrinking it by the heuristic
    /// when full.
    #[allow(clippy::too_many_arguments)]
    fn add_link(&self, space: Space<'_>, node: u32, new: u32, sim: f32, layer: u8, max: usize, buf: &mut Vec<u32>) {
        let _guard = self.lock(node);
        self.read_links(node, layer, buf);
        if buf.contains(&new) {
            return;
        }
        if buf.len() < max {
            let list = self.list(node, layer);
            if let Some((count, slots)) = list.split_first()
                && buf.len() < slots.len()
            {
                slots[buf.len()].store(new, Atomic::Relaxed);
                if layer == 0 {
                    self.indegree[new as usize].fetch_add(1, Atomic::Relaxed);
                }
                count.store(buf.len() as u32 + 1, Atomic::Release);
            }
            return;
        }
        let row = space.vectors.row(node as usize, space.dim);
        let mut candidates: Vec<Scored> = buf.iter().map(|&n| Scored { sim: space.score(&row, n), node: n }).collect();
        candidates.push(Scored { sim, node: new });
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let mut selected = self.select(space, &candidates, max);
        if layer == 0 {
            // A dropped old neighbour whose only in-link is this list stays, in place of the
            // farthest kept one that has another in-link.
            for c in &candidates {
                let dropped = c.node != new && !selected.iter().any(|s| s.node == c.node);
                if dropped && self.indegree(c.node) <= 1 {
                    let swap = selected.iter().rposition(|s| s.node != new && self.indegree(s.node) >= 2);
                    if let Some(i) = swap {
                        selected[i] = *c;
                    }
                }
            }
        }
        self.write_links(node, layer, selected.iter().map(|s| s.node));
    }

    /// The paper's neighbour heuristic over candidates sorted closest first, with its
    /// "keepPrunedConnections" option: the list is topped up with the closest pruned candidates, so
    /// nodes keep full lists (fewer nodes without in-links in low-dimensional or clustered data).
    fn select(&self, space: Space<'_>, candidates: &[Scored], max: usize) -> Vec<Scored> {
        if candidates.len() <= max {
            return candidates.to_vec();
        }
        let mut selected: Vec<Scored> = Vec::with_capacity(max);
        let mut pruned: Vec<Scored> = Vec::new();
        for &c in candidates {
            if selected.len() >= max {
                break;
            }
            let row = space.vectors.row(c.node as usize, space.dim);
            if selected.iter().all(|s| space.score(&row, s.node) < c.sim) {
                selected.push(c);
            } else {
                pruned.push(c);
            }
        }
        let room = max - selected.len();
        selected.extend(pruned.into_iter().take(room));
        selected
    }

    /// Greedy descent on one upper layer.
    fn greedy(&self, space: Space<'_>, query: &[f32], mut best: Scored, layer: u8, buf: &mut Vec<u32>) -> Scored {
        loop {
            let mut moved = false;
            self.read_links(best.node, layer, buf);
            for &n in buf.iter() {
                let sim = space.score(query, n);
                if sim > best.sim {
                    best = Scored { sim, node: n };
                    moved = true;
                }
            }
            if !moved {
                return best;
            }
        }
    }

    /// Best-first search of one layer keeping the `ef` best accepted nodes (a min-heap, worst on
    /// top). Nodes `accept` refuses are routed through but never kept; until `ef` accepted nodes are
    /// found the search does not stop early.
    #[allow(clippy::too_many_arguments)]
    fn search_layer(
        &self,
        space: Space<'_>,
        query: &[f32],
        entries: &[Scored],
        ef: usize,
        layer: u8,
        scratch: &mut Scratch,
        accept: &impl Fn(u32) -> bool,
    ) -> BinaryHeap<Reverse<Scored>> {
        let ef = ef.max(1);
        let mut candidates: BinaryHeap<Scored> = BinaryHeap::with_capacity(4 * ef);
        let mut results: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(ef + 1);
        let mut bound = f32::NEG_INFINITY;
        for &e in entries {
            if scratch.visited.insert(e.node) {
                candidates.push(e);
                if accept(e.node) {
                    results.push(Reverse(e));
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        if results.len() >= ef
            && let Some(Reverse(worst)) = results.peek()
        {
            bound = worst.sim;
        }
        while let Some(current) = candidates.pop() {
            if current.sim < bound {
                break;
            }
            self.read_links(current.node, layer, &mut scratch.links);
            scratch.fresh.clear();
            for &n in &scratch.links {
                if scratch.visited.insert(n) {
                    space.vectors.prefetch(space.kernel, n as usize, space.dim);
                    scratch.fresh.push(n);
                }
            }
            for &n in &scratch.fresh {
                let sim = space.score(query, n);
                if sim > bound || results.len() < ef {
                    candidates.push(Scored { sim, node: n });
                    if accept(n) {
                        results.push(Reverse(Scored { sim, node: n }));
                        if results.len() > ef {
                            results.pop();
                        }
                        if results.len() >= ef
                            && let Some(Reverse(worst)) = results.peek()
                        {
                            bound = worst.sim;
                        }
                    }
                }
            }
        }
        results
    }

    /// The (up to) `ef` accepted nodes closest to `query` found by the graph, in no order. Empty if
    /// the graph has no entry point.
    pub(crate) fn search(
        &self,
        space: Space<'_>,
        query: &[f32],
        ef: usize,
        accept: &impl Fn(u32) -> bool,
    ) -> Vec<Scored> {
        let Some(entry) = self.entry else { return Vec::new() };
        let mut scratch = self.take_scratch();
        let mut nearest = Scored { sim: space.score(query, entry), node: entry };
        for layer in (1..=self.max_level).rev() {
            nearest = self.greedy(space, query, nearest, layer, &mut scratch.links);
        }
        scratch.visited.reset(self.len());
        // The entry point is a second start: the graph is directed, and every node is reachable
        // from the entry point (kept so by inserts and `relink_unreachable`), not necessarily from
        // the greedy descent's end. With an exhaustive `ef` the search is then exact.
        let start = [nearest, Scored { sim: space.score(query, entry), node: entry }];
        let found = self.search_layer(space, query, &start, ef, 0, &mut scratch, accept);
        self.give_scratch(scratch);
        found.into_iter().map(|Reverse(s)| s).collect()
    }

    /// Linked nodes layer 0 does not reach from the entry point (a consistency check for tests).
    pub(crate) fn unreachable(&self) -> usize {
        self.unreached().len()
    }

    /// The linked nodes layer 0 does not reach from the entry point, in node order.
    fn unreached(&self) -> Vec<u32> {
        let Some(entry) = self.entry else { return Vec::new() };
        let mut reached = vec![false; self.len()];
        reached[entry as usize] = true;
        let mut stack = vec![entry];
        let mut buf = Vec::new();
        while let Some(n) = stack.pop() {
            self.read_links(n, 0, &mut buf);
            for &l in &buf {
                if !std::mem::replace(&mut reached[l as usize], true) {
                    stack.push(l);
                }
            }
        }
        (0..self.len() as u32).filter(|&n| self.levels[n as usize] != UNLINKED && !reached[n as usize]).collect()
    }

    /// Re-links every linked node that layer 0 does not reach from the entry point (no search could
    /// find it) after nodes were dropped by [`Graph::retain`] or [`Graph::attach`]: its lists are
    /// cleared and it is inserted again at its level. Returns how many were re-linked.
    pub(crate) fn relink_unreachable(&mut self, space: Space<'_>) -> usize {
        let Some(entry) = self.entry else { return 0 };
        let lost = self.unreached();
        let mut scratch = self.take_scratch();
        for &n in &lost {
            for layer in 0..=self.levels[n as usize] {
                self.write_links(n, layer, std::iter::empty());
            }
            self.link(space, n, entry, self.max_level, &|_| true, &mut scratch);
        }
        self.give_scratch(scratch);
        lost.len()
    }

    /// Keeps the nodes listed (`keep[new] = old`), renumbered in that order; links to dropped nodes
    /// are removed. The entry point stays if kept, else the highest kept node takes its place.
    pub(crate) fn retain(&mut self, keep: &[u32]) {
        let old_len = self.len();
        let mut new_of = vec![u32::MAX; old_len];
        for (new, &old) in keep.iter().enumerate() {
            new_of[old as usize] = new as u32;
        }
        let mut graph = Graph::new(self.m, self.ef_construction);
        graph.rng = self.rng;
        graph.reserve_exact(keep.len());
        let (mut out, mut buf, mut second) = (Vec::new(), Vec::new(), Vec::new());
        for _ in keep {
            graph.push_node();
        }
        let links = |n: u32, layer: u8, out: &mut Vec<u32>| self.read_links(n, layer, out);
        for (new, &old) in keep.iter().enumerate() {
            let level = self.levels[old as usize];
            if level == UNLINKED {
                continue;
            }
            graph.set_level(new as u32, level);
            graph.unlinked -= 1;
            for layer in 0..=level {
                remap_links(&links, old, layer, &new_of, &mut out, &mut buf, &mut second);
                graph.write_links(new as u32, layer, out.iter().copied());
            }
        }
        graph.entry = self.entry.map(|e| new_of[e as usize]).filter(|&e| e != u32::MAX);
        if graph.entry.is_none() {
            graph.entry = (0..keep.len() as u32)
                .filter(|&n| graph.levels[n as usize] != UNLINKED)
                .max_by_key(|&n| (graph.levels[n as usize], Reverse(n)));
        }
        graph.max_level = graph.entry.map_or(0, |e| graph.levels[e as usize]);
        *self = graph;
    }

    /// Writes the linked nodes `include` accepts, renumbered densely, with their face ids: the
    /// graph file format (see [`SavedGraph::read`]).
    pub(crate) fn write(
        &self,
        out: impl Write,
        dim: usize,
        include: impl Fn(u32) -> bool,
        face_id: impl Fn(u32) -> FaceId,
    ) -> io::Result<()> {
        let kept: Vec<u32> =
            (0..self.len() as u32).filter(|&n| self.levels[n as usize] != UNLINKED && include(n)).collect();
        let mut file_of = vec![u32::MAX; self.len()];
        for (i, &n) in kept.iter().enumerate() {
            file_of[n as usize] = i as u32;
        }
        let entry = self.entry.map(|e| file_of[e as usize]).filter(|&e| e != u32::MAX);
        let mut w = CrcWriter { inner: io::BufWriter::with_capacity(1 << 20, out), hasher: crc32fast::Hasher::new() };
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&(dim as u32).to_le_bytes())?;
        w.write_all(&(self.m as u32).to_le_bytes())?;
        w.write_all(&(kept.len() as u64).to_le_bytes())?;
        w.write_all(&entry.map_or(u64::MAX, u64::from).to_le_bytes())?;
        let (mut mapped, mut buf, mut second) = (Vec::new(), Vec::new(), Vec::new());
        let links = |n: u32, layer: u8, out: &mut Vec<u32>| self.read_links(n, layer, out);
        let mut bytes = Vec::with_capacity(4 * (2 + self.m0));
        for &n in &kept {
            bytes.clear();
            bytes.extend_from_slice(face_id(n).as_str().as_bytes());
            let level = self.levels[n as usize];
            bytes.push(level);
            for layer in 0..=level {
                remap_links(&links, n, layer, &file_of, &mut mapped, &mut buf, &mut second);
                bytes.push(mapped.len() as u8);
                for l in &mapped {
                    bytes.extend_from_slice(&l.to_le_bytes());
                }
            }
            w.write_all(&bytes)?;
        }
        let crc = w.hasher.clone().finalize();
        w.inner.write_all(&crc.to_le_bytes())?;
        w.inner.flush()
    }

    /// Replaces the graph by a saved one: each saved node becomes the slot `slot_of` its face id
    /// (saved nodes without a slot are dropped, with the links to them); slots the file does not
    /// name stay pending for [`Graph::link_pending`]. Returns how many saved nodes were used.
    pub(crate) fn attach(&mut self, saved: &SavedGraph, slot_of: impl Fn(FaceId) -> Option<u32>) -> usize {
        let nodes = self.len();
        let mut fresh = Graph::new(saved.m, self.ef_construction);
        fresh.rng = self.rng;
        fresh.reserve_exact(nodes);
        for _ in 0..nodes {
            fresh.push_node();
        }
        let mut slot: Vec<u32> = saved.ids.iter().map(|&id| slot_of(id).unwrap_or(u32::MAX)).collect();
        // A face id twice in the file: the first node keeps it.
        let mut taken = vec![false; nodes];
        for s in &mut slot {
            if *s != u32::MAX && std::mem::replace(&mut taken[*s as usize], true) {
                *s = u32::MAX;
            }
        }
        let links = |n: u32, layer: u8, out: &mut Vec<u32>| saved.read_links(n, layer, out);
        let (mut mapped, mut buf, mut second) = (Vec::new(), Vec::new(), Vec::new());
        let mut used = 0;
        for (f, &s) in slot.iter().enumerate() {
            if s == u32::MAX {
                continue;
            }
            used += 1;
            let level = saved.levels[f];
            fresh.set_level(s, level);
            fresh.unlinked -= 1;
            for layer in 0..=level {
                remap_links(&links, f as u32, layer, &slot, &mut mapped, &mut buf, &mut second);
                fresh.write_links(s, layer, mapped.iter().copied());
            }
        }
        fresh.entry = saved.entry.map(|e| slot[e as usize]).filter(|&e| e != u32::MAX);
        if fresh.entry.is_none() {
            fresh.entry = (0..nodes as u32)
                .filter(|&n| fresh.levels[n as usize] != UNLINKED)
                .max_by_key(|&n| (fresh.levels[n as usize], Reverse(n)));
        }
        fresh.max_level = fresh.entry.map_or(0, |e| fresh.levels[e as usize]);
        *self = fresh;
        used
    }
}

/// `node`'s links on `layer` renumbered by `new_of` (`u32::MAX` = dropped), into `out`. A link to a
/// dropped node is replaced by that node's first kept neighbour on the layer (its closest, as lists
/// are kept closest first) that is not `node` and not linked already, so dropping nodes keeps the
/// survivors' degree and routes.
fn remap_links(
    links: &dyn Fn(u32, u8, &mut Vec<u32>),
    node: u32,
    layer: u8,
    new_of: &[u32],
    out: &mut Vec<u32>,
    buf: &mut Vec<u32>,
    second: &mut Vec<u32>,
) {
    out.clear();
    links(node, layer, buf);
    let me = new_of[node as usize];
    for &l in buf.iter() {
        let mapped = new_of[l as usize];
        if mapped != u32::MAX {
            if !out.contains(&mapped) {
                out.push(mapped);
            }
            continue;
        }
        links(l, layer, second);
        if let Some(sub) =
            second.iter().map(|&x| new_of[x as usize]).find(|&x| x != u32::MAX && x != me && !out.contains(&x))
        {
            out.push(sub);
        }
    }
}

struct NodeLock<'a>(&'a AtomicU8);

impl Drop for NodeLock<'_> {
    fn drop(&mut self) {
        self.0.store(0, Atomic::Release);
    }
}

/// First bytes of a graph file.
pub(crate) const MAGIC: &[u8; 8] = b"FRSHNSW\0";
/// The graph file format version this build writes and reads.
pub const GRAPH_FILE_VERSION: u32 = 1;
const VERSION: u32 = GRAPH_FILE_VERSION;

/// Why a graph file was refused; the index is unchanged (rebuild it with
/// [`crate::FaceSetIndex::build_graph`]).
#[derive(Debug, thiserror::Error)]
pub enum GraphFileError {
    /// Reading failed.
    #[error("reading the graph file: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with the graph file magic.
    #[error("not an frs graph file")]
    NotAGraphFile,
    /// The file was written by another format version.
    #[error("graph file format version {found}, this build reads version {GRAPH_FILE_VERSION}")]
    UnsupportedVersion {
        /// The file's version.
        found: u32,
    },
    /// The file's graph does not fit this index (dimension or links per node).
    #[error("the graph file does not fit this index: {0}")]
    Mismatch(String),
    /// Truncated, a bad checksum, or an impossible value.
    #[error("corrupt graph file: {0}")]
    Corrupt(String),
    /// The index has no graph (its settings have no `ann`).
    #[error("this index has no graph")]
    NoGraph,
}

/// A graph read from a file, before it is attached to an index.
pub(crate) struct SavedGraph {
    m: usize,
    ids: Vec<FaceId>,
    levels: Vec<u8>,
    /// Where each node's lists start in `links`: per layer, a count then the links.
    offsets: Vec<u64>,
    links: Vec<u32>,
    entry: Option<u32>,
}

impl SavedGraph {
    /// Reads and checks a graph file: magic, version, `dim` and `m`, every link in range, the
    /// CRC-32 of everything before the 4-byte trailer, and nothing after it.
    ///
    /// Format (little-endian): `"FRSHNSW\0"`, version `u32`, dim `u32`, m `u32`, nodes `u64`, entry
    /// `u64` (`u64::MAX` = none); per node: face id (8 ASCII bytes), level `u8`, then for layers
    /// 0..=level a count `u8` and that many `u32` node numbers; then the CRC-32 (IEEE) `u32`.
    pub(crate) fn read(input: impl Read, dim: usize, m: usize) -> Result<SavedGraph, GraphFileError> {
        let mut r = CrcReader { inner: io::BufReader::with_capacity(1 << 20, input), hasher: crc32fast::Hasher::new() };
        let truncated = |e: io::Error| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                GraphFileError::Corrupt("truncated".into())
            } else {
                GraphFileError::Io(e)
            }
        };
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => GraphFileError::NotAGraphFile,
            _ => GraphFileError::Io(e),
        })?;
        if &magic != MAGIC {
            return Err(GraphFileError::NotAGraphFile);
        }
        let version = read_u32(&mut r).map_err(truncated)?;
        if version != VERSION {
            return Err(GraphFileError::UnsupportedVersion { found: version });
        }
        let file_dim = read_u32(&mut r).map_err(truncated)? as usize;
        let file_m = read_u32(&mut r).map_err(truncated)? as usize;
        if file_dim != dim {
            return Err(GraphFileError::Mismatch(format!("dimension {file_dim}, the index has {dim}")));
        }
        if file_m != m.clamp(2, 127) {
            return Err(GraphFileError::Mismatch(format!("m = {file_m}, the index has m = {m}")));
        }
        let nodes = read_u64(&mut r).map_err(truncated)?;
        let entry = read_u64(&mut r).map_err(truncated)?;
        if nodes > u64::from(u32::MAX) || (entry != u64::MAX && entry >= nodes) {
            return Err(GraphFileError::Corrupt(format!("{nodes} nodes, entry {entry}")));
        }
        let nodes = nodes as usize;
        let (m0, m) = (2 * file_m, file_m);
        // Capacity grows with what is actually read, so a forged count cannot reserve a huge buffer.
        let mut saved = SavedGraph {
            m,
            ids: Vec::new(),
            levels: Vec::new(),
            offsets: Vec::new(),
            links: Vec::new(),
            entry: (entry != u64::MAX).then_some(entry as u32),
        };
        let mut node = [0u8; 9];
        let mut words = [0u8; 4 * 255];
        for _ in 0..nodes {
            r.read_exact(&mut node).map_err(truncated)?;
            let id = std::str::from_utf8(&node[..8])
                .ok()
                .and_then(FaceId::parse)
                .ok_or_else(|| GraphFileError::Corrupt("bad face id".into()))?;
            let level = node[8];
            if level > MAX_LEVEL {
                return Err(GraphFileError::Corrupt(format!("level {level}")));
            }
            saved.ids.push(id);
            saved.levels.push(level);
            saved.offsets.push(saved.links.len() as u64);
            for layer in 0..=level {
                let mut count = [0u8; 1];
                r.read_exact(&mut count).map_err(truncated)?;
                let count = count[0] as usize;
                if count > if layer == 0 { m0 } else { m } {
                    return Err(GraphFileError::Corrupt(format!("{count} links on layer {layer}")));
                }
                r.read_exact(&mut words[..4 * count]).map_err(truncated)?;
                saved.links.push(count as u32);
                for word in words[..4 * count].chunks_exact(4) {
                    let link = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                    if link as usize >= nodes {
                        return Err(GraphFileError::Corrupt(format!("link to node {link} of {nodes}")));
                    }
                    saved.links.push(link);
                }
            }
        }
        let computed = r.hasher.clone().finalize();
        let mut trailer = [0u8; 4];
        r.inner.read_exact(&mut trailer).map_err(truncated)?;
        if u32::from_le_bytes(trailer) != computed {
            return Err(GraphFileError::Corrupt("checksum mismatch".into()));
        }
        let mut extra = [0u8; 1];
        if r.inner.read(&mut extra)? != 0 {
            return Err(GraphFileError::Corrupt("bytes after the checksum".into()));
        }
        Ok(saved)
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Node `node`'s saved links on `layer` (none above its level).
    fn read_links(&self, node: u32, layer: u8, out: &mut Vec<u32>) {
        out.clear();
        let node = node as usize;
        if layer > self.levels[node] {
            return;
        }
        let mut at = self.offsets[node] as usize;
        for _ in 0..layer {
            at += 1 + self.links[at] as usize;
        }
        let count = self.links[at] as usize;
        out.extend_from_slice(&self.links[at + 1..at + 1 + count]);
    }
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

struct CrcWriter<W: Write> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct CrcReader<R: Read> {
    inner: R,
    hasher: crc32fast::Hasher,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
