//! The push-to-talk button: a button of a wheel, button box or gamepad through gilrs
//! (`gamepad:ID:BUTTON`, evdev on Linux: needs libudev; XInput/WGI on Windows), or a keyboard key
//! (`key:CODE`: an X11 keycode polled with QueryKeymap on Linux/X11, a virtual-key code through
//! `GetAsyncKeyState` on Windows). Polled by the voice thread every 10 ms frame. Also lists the
//! controllers and their buttons for `devices`. Reads no env vars (X11: the `DISPLAY` x11rb reads).

use serde::Serialize;

/// Which button talks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PttButton {
    /// gilrs' gamepad id (as `devices` lists it) and a button: a gilrs name (`South`,
    /// `RightTrigger`…) or the raw code number `devices` shows (button boxes' buttons are often
    /// unnamed).
    Gamepad { id: usize, button: String },
    /// A keyboard key: X11 keycode on Linux, virtual-key code on Windows.
    Key(u32),
}

impl PttButton {
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || format!("expected gamepad:ID:BUTTON or key:CODE, not {s:?}");
        match s.split(':').collect::<Vec<_>>().as_slice() {
            ["gamepad", id, button] if !button.is_empty() => {
                Ok(PttButton::Gamepad { id: id.parse().map_err(|_| err())?, button: (*button).to_owned() })
            }
            ["key", code] => Ok(PttButton::Key(code.parse().map_err(|_| err())?)),
            _ => Err(err()),
        }
    }
}

/// Something that says whether the button is down now.
pub trait PttInput {
    fn pressed(&mut self) -> bool;
}

/// No button (`--ptt vad`).
pub struct NoButton;

impl PttInput for NoButton {
    fn pressed(&mut self) -> bool {
        false
    }
}

/// Opens the button; an error names what is missing.
pub fn open(button: &PttButton) -> Result<Box<dyn PttInput>, String> {
    match button {
        PttButton::Gamepad { id, button } => Ok(Box::new(GamepadButton::new(*id, button.clone())?)),
        PttButton::Key(code) => keyboard(*code),
    }
}

const BUTTONS: [gilrs::Button; 19] = {
    use gilrs::Button::*;
    [
        South,
        East,
        North,
        West,
        C,
        Z,
        LeftTrigger,
        LeftTrigger2,
        RightTrigger,
        RightTrigger2,
        Select,
        Start,
        Mode,
        LeftThumb,
        RightThumb,
        DPadUp,
        DPadDown,
        DPadLeft,
        DPadRight,
    ]
};

/// A controller's button through gilrs' events.
pub struct GamepadButton {
    gilrs: gilrs::Gilrs,
    id: usize,
    button: String,
    down: bool,
}

impl GamepadButton {
    pub fn new(id: usize, button: String) -> Result<Self, String> {
        let gilrs = gilrs::Gilrs::new().map_err(|e| format!("game controllers: {e}"))?;
        if !gilrs.gamepads().any(|(g, _)| usize::from(g) == id) {
            tracing::warn!(id, "push-to-talk controller not connected yet; waiting for it");
        }
        Ok(Self { gilrs, id, button, down: false })
    }

    fn matches(&self, b: gilrs::Button, code: gilrs::ev::Code) -> bool {
        format!("{b:?}").eq_ignore_ascii_case(&self.button) || code.into_u32().to_string() == self.button
    }
}

impl PttInput for GamepadButton {
    fn pressed(&mut self) -> bool {
        while let Some(ev) = self.gilrs.next_event() {
            if usize::from(ev.id) != self.id {
                continue;
            }
            match ev.event {
                gilrs::EventType::ButtonPressed(b, c) if self.matches(b, c) => self.down = true,
                gilrs::EventType::ButtonReleased(b, c) if self.matches(b, c) => self.down = false,
                gilrs::EventType::Disconnected => self.down = false,
                _ => {}
            }
        }
        self.down
    }
}

/// A controller as `devices` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Controller {
    pub id: usize,
    pub name: String,
    /// `gamepad:ID:BUTTON` names: gilrs' mapped names, then raw codes.
    pub buttons: Vec<String>,
}

/// The connected controllers, or why they cannot be listed.
pub fn controllers() -> Result<Vec<Controller>, String> {
    let gilrs = gilrs::Gilrs::new().map_err(|e| format!("game controllers: {e}"))?;
    Ok(gilrs
        .gamepads()
        .map(|(id, g)| {
            let mut buttons: Vec<String> =
                BUTTONS.iter().filter(|b| g.button_code(**b).is_some()).map(|b| format!("{b:?}")).collect();
            buttons.extend(g.state().buttons().map(|(code, _)| code.into_u32().to_string()));
            Controller { id: usize::from(id), name: g.name().to_owned(), buttons }
        })
        .collect())
}

#[cfg(all(unix, not(target_os = "macos")))]
fn keyboard(code: u32) -> Result<Box<dyn PttInput>, String> {
    use x11rb::connection::Connection as _;
    let (conn, _) =
        x11rb::connect(None).map_err(|e| format!("keyboard push-to-talk needs an X11 display: {e}"))?;
    let _ = conn.setup();
    check_keycode(code)?;
    Ok(Box::new(X11Key { conn, code: code as usize }))
}

#[cfg(all(unix, not(target_os = "macos")))]
fn check_keycode(code: u32) -> Result<(), String> {
    if (8..=255).contains(&code) {
        Ok(())
    } else {
        Err(format!("key:{code}: X11 keycodes are 8 to 255 (see `xev`)"))
    }
}

/// A key polled with QueryKeymap: works whichever window has the focus (the sim's).
#[cfg(all(unix, not(target_os = "macos")))]
struct X11Key {
    conn: x11rb::rust_connection::RustConnection,
    code: usize,
}

#[cfg(all(unix, not(target_os = "macos")))]
impl PttInput for X11Key {
    fn pressed(&mut self) -> bool {
        use x11rb::protocol::xproto::ConnectionExt as _;
        match self
            .conn
            .query_keymap()
            .map_err(|e| e.to_string())
            .and_then(|c| c.reply().map_err(|e| e.to_string()))
        {
            Ok(r) => r.keys[self.code / 8] & (1 << (self.code % 8)) != 0,
            Err(e) => {
                tracing::debug!(error = %e, "QueryKeymap failed");
                false
            }
        }
    }
}

#[cfg(windows)]
fn keyboard(code: u32) -> Result<Box<dyn PttInput>, String> {
    struct WinKey(i32);
    impl PttInput for WinKey {
        fn pressed(&mut self) -> bool {
            crate::platform::windows::key_down(self.0)
        }
    }
    let vk = i32::try_from(code)
        .ok()
        .filter(|c| (1..=254).contains(c))
        .ok_or("key:CODE: a virtual-key code, 1 to 254")?;
    Ok(Box::new(WinKey(vk)))
}

#[cfg(not(any(windows, all(unix, not(target_os = "macos")))))]
fn keyboard(_code: u32) -> Result<Box<dyn PttInput>, String> {
    Err("keyboard push-to-talk is not available on this system; use a controller button".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_parse() {
        assert_eq!(
            PttButton::parse("gamepad:0:South"),
            Ok(PttButton::Gamepad { id: 0, button: "South".into() })
        );
        assert_eq!(PttButton::parse("key:65"), Ok(PttButton::Key(65)));
        assert!(PttButton::parse("gamepad:x:South").is_err());
        assert!(PttButton::parse("mouse:1").is_err());
    }
}
