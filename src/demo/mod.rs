pub mod run;
pub mod services;
