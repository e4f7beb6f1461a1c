//! Model pack preparation (in progress).
