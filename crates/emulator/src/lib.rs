//! flexus-emulator — placeholder.
