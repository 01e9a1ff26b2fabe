//! The drivers' radio on the pit wall: a driver's voice panel (what was heard, how sure the
//! recogniser was, what the driver was told) and the banner of "box this lap" calls across the
//! top of every page until they are a few minutes old or dismissed. Reads no env vars.

use yew::prelude::*;

use super::Ctx;
use crate::model::store::Action;
use crate::model::voice::confidence;

#[derive(Properties, PartialEq)]
pub struct PanelProps {
    pub driver_id: String,
}

#[function_component(VoicePanel)]
pub fn voice_panel(props: &PanelProps) -> Html {
    let Some(ctx) = use_context::<Ctx>() else { return html! {} };
    let store = ctx.store.read();
    let rows: Html = store
        .voice
        .of(&props.driver_id)
        .take(20)
        .map(|x| {
            html! {
                <li class="exchange" data-command={x.command.name()}>
                    <span class="heard">{ format!("“{}”", x.transcript) }</span>
                    <span class="confidence">{ confidence(x.confidence) }</span>
                    <span class="answer">{ &x.answer }</span>
                    <span class="age">{ x.at.format("%H:%M:%S").to_string() }</span>
                </li>
            }
        })
        .collect();
    html! {
        <ul class="voice" id="voice">
            if store.voice.of(&props.driver_id).next().is_none() {
                <li class="empty">{ "Nothing said on the radio yet" }</li>
            }
            { rows }
        </ul>
    }
}

#[function_component(BoxBanner)]
pub fn box_banner() -> Html {
    let Some(ctx) = use_context::<Ctx>() else { return html! {} };
    let now = chrono::DateTime::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default();
    let store = ctx.store.read();
    let calls: Html = store
        .voice
        .box_calls(&store.messages, now)
        .into_iter()
        .map(|m| {
            let dismiss = {
                let (ctx, id) = (ctx.clone(), m.id.clone());
                Callback::from(move |_| ctx.dispatch(Action::DismissBoxCall(id.clone())))
            };
            html! {
                <div class="box-call" role="alert" data-id={m.id.clone()}>
                    <strong>{ "BOX THIS LAP" }</strong>
                    <span>{ format!(" {} · {}", m.sender_name, m.sent_at.format("%H:%M:%S")) }</span>
                    <button onclick={dismiss}>{ "Dismiss" }</button>
                </div>
            }
        })
        .collect();
    html! { <div class="box-banner" id="box-banner">{ calls }</div> }
}
