//! The login form. Reads no env vars.

use yew::prelude::*;

use super::value_of;
use crate::net::api::{Api, Session};

#[derive(Properties, PartialEq)]
pub struct Props {
    pub api: Api,
    pub onlogin: Callback<Session>,
}

#[function_component(Login)]
pub fn login(props: &Props) -> Html {
    let username = use_state(String::new);
    let password = use_state(String::new);
    let error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let onsubmit = {
        let (username, password, error, busy) =
            (username.clone(), password.clone(), error.clone(), busy.clone());
        let (api, onlogin) = (props.api.clone(), props.onlogin.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *busy {
                return;
            }
            busy.set(true);
            let (u, p) = ((*username).clone(), (*password).clone());
            let (api, onlogin, error, busy) = (api.clone(), onlogin.clone(), error.clone(), busy.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match api.login(&u, &p).await {
                    Ok(s) => {
                        error.set(None);
                        onlogin.emit(s);
                    }
                    Err(e) => error.set(Some(e.message)),
                }
                busy.set(false);
            });
        })
    };
    let on_user = {
        let username = username.clone();
        Callback::from(move |e: InputEvent| username.set(value_of(&e)))
    };
    let on_pass = {
        let password = password.clone();
        Callback::from(move |e: InputEvent| password.set(value_of(&e)))
    };
    html! {
        <div class="login">
            <form {onsubmit}>
                <h1>{ "PitBox" }</h1>
                <p class="sub">{ "Team pit wall" }</p>
                <label>{ "Username" }
                    <input id="username" autocomplete="username" value={(*username).clone()} oninput={on_user} />
                </label>
                <label>{ "Password" }
                    <input id="password" type="password" autocomplete="current-password"
                        value={(*password).clone()} oninput={on_pass} />
                </label>
                <button id="login-btn" type="submit" disabled={*busy}>{ if *busy { "Logging in…" } else { "Log in" } }</button>
                if let Some(e) = &*error { <p id="login-error" class="error">{ e }</p> }
            </form>
        </div>
    }
}
