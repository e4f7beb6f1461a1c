//! HTTP edge of frs (in progress).
