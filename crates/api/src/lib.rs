//! flexus-api — placeholder; see docs/ and ../shared/docs/architecture.md.
