//! Black-box tests against running apps and the `dialer` binary, with real Postgres and Redis.

mod cli;
mod engine;
mod health;
mod helpers;
mod import;
mod recording;
mod schema;
mod sim;
mod transfer;
mod webhooks;
