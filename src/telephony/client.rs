//! Twilio REST client (filled by a later commit).
