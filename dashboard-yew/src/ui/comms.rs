//! Team messages (send with a priority, receive live, read state) and driver handoffs (request a
//! swap with reason and urgency; accept, reject, complete; the telemetry snapshot the runtime
//! attached is shown). Both go over the team socket, so the answer arrives as a push like everyone
//! else's. Reads no env vars.

use pitbox_schema::wire::{
    AnswerHandoff, HandoffStatus, HandoffUrgency, Message, MessagePriority, NewHandoff, NewTeamMessage,
    RequestHandoff, SendTeamMessage, Success,
};
use yew::prelude::*;

use super::{value_of, Ctx};
use crate::model::store::Action;
use crate::model::{format, handoff};

#[function_component(Comms)]
pub fn comms() -> Html {
    let text = use_state(String::new);
    let priority = use_state(|| MessagePriority::Normal);
    let target = use_state(String::new);
    let from = use_state(String::new);
    let reason = use_state(String::new);
    let urgency = use_state(|| HandoffUrgency::Normal);
    let Some(ctx) = use_context::<Ctx>() else { return html! {} };
    let store = ctx.store.read();

    let send_msg = {
        let (ctx, text, priority) = (ctx.clone(), text.clone(), priority.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let content = text.trim().to_owned();
            if content.is_empty() {
                return;
            }
            let m = SendTeamMessage {
                team_id: ctx.team_id.clone(),
                message: NewTeamMessage { content, priority: *priority, attachment: None },
            };
            match ctx.send(Message::SendTeamMessage(m)) {
                Ok(_) => text.set(String::new()),
                Err(err) => ctx.notice(err),
            }
        })
    };
    let messages: Html = store
        .messages
        .iter()
        .rev()
        .take(50)
        .map(|m| {
            let read = {
                let (ctx, id, unread) = (ctx.clone(), m.id.clone(), !m.read);
                Callback::from(move |_| {
                    if !unread {
                        return;
                    }
                    ctx.dispatch(Action::MarkRead(id.clone()));
                    let (api, id) = (ctx.api.clone(), id.clone());
                    wasm_bindgen_futures::spawn_local(async move {
                        let _ = api.post::<_, Success>(&format!("/api/messages/{id}/read"), &()).await;
                    });
                })
            };
            html! {
                <li class={classes!("msg", m.priority.as_str(), (!m.read).then_some("unread"))} data-id={m.id.clone()} onclick={read}>
                    <span class="who">{ &m.sender_name }</span>
                    <span class="prio">{ m.priority.as_str() }</span>
                    <span class="when">{ m.sent_at.format("%H:%M:%S").to_string() }</span>
                    <div class="text">{ &m.content }</div>
                </li>
            }
        })
        .collect();

    let drivers: Vec<(String, String)> =
        store.cars.values().map(|c| (c.driver_id.clone(), c.name())).collect();
    // Who is in the car now (the runtime attaches their latest telemetry): chosen, or else the
    // first other driver who is streaming.
    let streaming: Vec<String> =
        store.cars.values().filter(|c| c.latest.is_some()).map(|c| c.driver_id.clone()).collect();
    let request = {
        let (ctx, target, from, reason, urgency) =
            (ctx.clone(), target.clone(), from.clone(), reason.clone(), urgency.clone());
        let first = drivers.first().map(|d| d.0.clone()).unwrap_or_default();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let target_id = if target.is_empty() { first.clone() } else { (*target).clone() };
            let from_id = if from.is_empty() {
                streaming.iter().find(|d| **d != target_id).cloned()
            } else {
                Some((*from).clone()).filter(|f| *f != target_id)
            };
            if target_id.is_empty() || reason.trim().is_empty() {
                return ctx.notice("a handoff needs a target driver and a reason");
            }
            let h = RequestHandoff {
                team_id: ctx.team_id.clone(),
                handoff: NewHandoff {
                    target_driver_id: target_id,
                    from_driver_id: from_id,
                    reason: reason.trim().to_owned(),
                    urgency: *urgency,
                },
            };
            match ctx.send(Message::RequestHandoff(h)) {
                Ok(_) => reason.set(String::new()),
                Err(err) => ctx.notice(err),
            }
        })
    };
    let answer = |id: &str, status: HandoffStatus, class: &'static str, label: &'static str| {
        let (ctx, id) = (ctx.clone(), id.to_owned());
        let onclick = Callback::from(move |_| {
            if let Err(err) = ctx.send(Message::AnswerHandoff(AnswerHandoff { id: id.clone(), status })) {
                ctx.notice(err);
            }
        });
        html! { <button class={class} {onclick}>{ label }</button> }
    };
    let handoffs: Html = store
        .handoffs
        .iter()
        .take(10)
        .map(|h| {
            let buttons: Html = handoff::answers(ctx.user.role, ctx.user.driver_id.as_deref(), h)
                .into_iter()
                .map(|to| match to {
                    HandoffStatus::Accepted => answer(&h.id, to, "ho-accept", "Accept"),
                    HandoffStatus::Rejected => answer(&h.id, to, "ho-reject", "Reject"),
                    _ => answer(&h.id, to, "ho-complete", "Complete"),
                })
                .collect();
            let snap = h.telemetry_snapshot.as_ref().map(|f| {
                format!(
                    "at request: lap {} · {:.0} km/h · fuel {} · {}",
                    f.sample.lap,
                    f.sample.speed,
                    format::litres(f.sample.fuel_level),
                    format::position(f.sample.position)
                )
            });
            html! {
                <li class={classes!("handoff", h.urgency.as_str())} data-id={h.id.clone()} data-status={h.status.as_str()}>
                    <div><b>{ format!("→ {}", h.target_driver_name) }</b>
                        <span class={classes!("status", h.status.as_str())}>{ h.status.as_str() }</span>
                        if h.urgency == HandoffUrgency::Urgent { <span class="urgent">{ "URGENT" }</span> }</div>
                    <div class="text">{ format!("{} — {}", h.reason, h.requester_name) }</div>
                    if let Some(s) = snap { <div class="snap">{ s }</div> }
                    <div class="actions">{ buttons }</div>
                </li>
            }
        })
        .collect();
    let on_text = {
        let text = text.clone();
        Callback::from(move |e: InputEvent| text.set(value_of(&e)))
    };
    let on_prio = {
        let priority = priority.clone();
        Callback::from(move |e: Event| priority.set(value_of(&e).parse().unwrap_or(MessagePriority::Normal)))
    };
    let on_target = {
        let target = target.clone();
        Callback::from(move |e: Event| target.set(value_of(&e)))
    };
    let on_from = {
        let from = from.clone();
        Callback::from(move |e: Event| from.set(value_of(&e)))
    };
    let on_reason = {
        let reason = reason.clone();
        Callback::from(move |e: InputEvent| reason.set(value_of(&e)))
    };
    let on_urgency = {
        let urgency = urgency.clone();
        Callback::from(move |e: Event| urgency.set(value_of(&e).parse().unwrap_or(HandoffUrgency::Normal)))
    };
    html! {
        <aside class="comms">
            <section class="panel">
                <h2>{ format!("Team radio ({} unread)", store.unread()) }</h2>
                <form class="send" onsubmit={send_msg}>
                    <input id="msg-text" placeholder="Message to the team" value={(*text).clone()} oninput={on_text} />
                    <select id="msg-priority" onchange={on_prio}>
                        { for MessagePriority::ALL.iter().map(|p| html! { <option value={p.as_str()} selected={*p == *priority}>{ p.as_str() }</option> }) }
                    </select>
                    <button id="msg-send" type="submit">{ "Send" }</button>
                </form>
                <ul class="messages" id="messages">{ messages }</ul>
            </section>
            <section class="panel">
                <h2>{ "Driver handoffs" }</h2>
                <form class="send" onsubmit={request}>
                    <select id="ho-from" title="driver in the car now" onchange={on_from}>
                        <option value="" selected={from.is_empty()}>{ "from: auto" }</option>
                        { for drivers.iter().map(|(id, name)| html! { <option value={id.clone()} selected={*id == *from}>{ format!("from {name}") }</option> }) }
                    </select>
                    <select id="ho-target" onchange={on_target}>
                        { for drivers.iter().map(|(id, name)| html! { <option value={id.clone()} selected={*id == *target}>{ format!("to {name}") }</option> }) }
                    </select>
                    <input id="ho-reason" placeholder="Reason" value={(*reason).clone()} oninput={on_reason} />
                    <select id="ho-urgency" onchange={on_urgency}>
                        { for HandoffUrgency::ALL.iter().map(|u| html! { <option value={u.as_str()} selected={*u == *urgency}>{ u.as_str() }</option> }) }
                    </select>
                    <button id="ho-send" type="submit">{ "Request" }</button>
                </form>
                <ul class="handoffs" id="handoffs">{ handoffs }</ul>
            </section>
        </aside>
    }
}
