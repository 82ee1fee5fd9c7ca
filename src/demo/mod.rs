pub mod services;
pub mod run;
