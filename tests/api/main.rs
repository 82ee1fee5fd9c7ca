//! Black-box tests against running apps and the `dialer` binary, with real Postgres and Redis.

mod agents;
mod cli;
mod crm_webhooks;
mod disposition;
mod engine;
mod health;
mod helpers;
mod import;
mod isolation;
mod manage;
mod openapi;
mod recording;
mod reports;
mod schema;
mod sim;
mod transfer;
mod webhooks;
