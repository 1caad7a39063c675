//! flexus-cloud — placeholder; see docs/ and ../shared/docs/architecture.md.
