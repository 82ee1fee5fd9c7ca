//! TwiML: typed builder (filled by a later commit).
