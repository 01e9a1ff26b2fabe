//! PitBox's actors and their messages, one actor per file: `RuntimeSupervisor` → `TeamSupervisor`
//! per team → `TeamHub` and `DriverSession` per driver → `Coach`, `VoiceChannel`, `VideoRelay`; the
//! `StoreWriter`; the fencing of team writes in cluster mode ([`fence`]); the supervision library every parent uses ([`supervision`]), the counting
//! addresses that make the admin tree's mailbox a real queue length ([`mailbox`]), and the registry
//! that the admin endpoint reads; lap assembly. No HTTP here. Reads no environment variables.

pub mod coach;
pub mod coach_store;
pub mod driver_session;
pub mod fence;
pub mod lap;
pub mod mailbox;
pub mod registry;
pub mod runtime_supervisor;
pub mod store_writer;
pub mod supervision;
pub mod system;
pub mod team_hub;
pub mod team_supervisor;
pub mod video_relay;
pub mod voice_channel;

pub use lap::{CompletedLap, LapAssembler};
pub use system::{ActorSystem, Env, SystemError, SystemOptions};
