//! The commands' flows, on top of every layer: a command line becomes a
//! planned job ([`job`]), runs through the engine with its analysis
//! watching, and leaves a report and an exit code. Each command that is more
//! than one job has its flow here: the throttle probe's phases
//! ([`throttle`]), a scenario's steps ([`scenario`]), the simulator's
//! command ([`sim`]) and the demo ([`demo`]).
pub mod canary;
pub mod demo;
pub mod job;
pub mod scenario;
pub mod serve;
pub mod sim;
pub mod steps;
pub mod throttle;
