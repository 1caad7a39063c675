//! flexus-agent — placeholder.
