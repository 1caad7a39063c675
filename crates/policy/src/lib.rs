//! flexus-policy — placeholder; see docs/ and ../shared/docs/architecture.md.
