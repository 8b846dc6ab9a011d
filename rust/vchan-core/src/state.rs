//! An endpoint's state, as its live byte in the shared page says.

use crate::error::Error;
use crate::layout::{LIVE_CONNECTED, LIVE_EXITED, LIVE_WAITING};

/// The state of an endpoint as announced by its live byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveState {
    /// 0: closed, or died (the unmap-notify cleared the byte).
    Exited,
    /// 1: connected.
    Connected,
    /// 2: not connected yet.
    Waiting,
}

impl LiveState {
    /// Decode a live byte; other values are a protocol violation.
    pub const fn from_byte(b: u8) -> Result<LiveState, Error> {
        match b {
            LIVE_EXITED => Ok(LiveState::Exited),
            LIVE_CONNECTED => Ok(LiveState::Connected),
            LIVE_WAITING => Ok(LiveState::Waiting),
            other => Err(Error::BadLiveState(other)),
        }
    }
    /// The byte encoding this state.
    pub const fn to_byte(self) -> u8 {
        match self {
            LiveState::Exited => LIVE_EXITED,
            LiveState::Connected => LIVE_CONNECTED,
            LiveState::Waiting => LIVE_WAITING,
        }
    }
}
