//! flexus-sim — placeholder; see docs/ and ../shared/docs/architecture.md.
