//! How the service reports where its time goes, without knowing who listens: the server turns
//! these calls into Prometheus metrics; the CLI and tests use [`NoObserver`].

use std::time::Duration;

/// A timed stage of the service. Names are fixed (they become metric label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Time an inference job waited in the queue before a worker took it.
    Queue,
    /// Image bytes to upright RGB (format sniffing, limits, EXIF), once per image.
    Decode,
    /// Face detection (pre-processing, YuNet, post-processing), once per image.
    Detect,
    /// Alignment of every embedded face of one image.
    Align,
    /// The recognizer's batch over the aligned faces of one image.
    Embed,
    /// One search call over a face set's in-memory index (every probe of a multi-face search).
    Search,
    /// One durable store write (create or delete a set; add, update or delete faces), fsync included.
    Store,
}

impl Stage {
    /// Every stage, for tables and tests.
    pub const ALL: [Stage; 7] =
        [Stage::Queue, Stage::Decode, Stage::Detect, Stage::Align, Stage::Embed, Stage::Search, Stage::Store];

    /// The stable lowercase name (`decode`, `detect`, …).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Decode => "decode",
            Stage::Detect => "detect",
            Stage::Align => "align",
            Stage::Embed => "embed",
            Stage::Search => "search",
            Stage::Store => "store",
        }
    }
}

/// Receives the service's stage timings and queue changes. Called on inference threads and in the
/// store and search paths: implementations must be cheap and must never block for long.
pub trait Observer: Send + Sync {
    /// One unit of work (see [`Stage`]) spent `elapsed` in `stage`.
    fn stage(&self, stage: Stage, elapsed: Duration);

    /// The number of inference jobs waiting in the queue changed by `delta` (+1 queued, −1 taken
    /// or refused).
    fn queue_changed(&self, delta: i64);
}

/// An [`Observer`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn stage(&self, _stage: Stage, _elapsed: Duration) {}

    fn queue_changed(&self, _delta: i64) {}
}
