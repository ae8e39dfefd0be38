//! Runnable examples of embedding vigil
