//! The engineers' view of the live actor tree (`/admin/actors/stream`), an operator's tool in the
//! spirit of Erlang's observer: collapsible tree with teams and drivers by name, status, mailbox
//! length, message counts and rates (computed here from consecutive snapshots), sparklines of
//! message rate and mailbox over the last minutes, restarts highlighted, each actor's own gauges
//! (a video relay's viewers, frames/s, bitrate, drops), and a detail pane for the selected actor
//! (state summary, children, restart history with reasons and times). Reads no env vars.

use pitbox_schema::wire::{ActorStatus, SupervisionEventKind};
use yew::prelude::*;

use super::Ctx;
use crate::model::store::{Action, Conn, Store};
use crate::model::tree::{Spark, HISTORY_SECS, SPARK_H, SPARK_W};

fn status_name(s: ActorStatus) -> &'static str {
    match s {
        ActorStatus::Running => "running",
        ActorStatus::Restarting => "restarting",
        ActorStatus::Stopped => "stopped",
    }
}

/// One sparkline: a polyline whose points the model computed once per snapshot.
fn spark(s: &Spark, class: &'static str, what: &str) -> Html {
    html! {
        <svg class={classes!("spark", class)} viewBox={format!("0 0 {SPARK_W} {SPARK_H}")}
            width={SPARK_W.to_string()} height={SPARK_H.to_string()} preserveAspectRatio="none">
            <title>{ format!("{what}, last {:.0} min, max {:.1}", HISTORY_SECS / 60.0, s.max) }</title>
            <polyline points={s.points.clone()} />
        </svg>
    }
}

#[function_component(Engineer)]
pub fn engineer() -> Html {
    let Some(ctx) = use_context::<Ctx>() else { return html! {} };
    let store = ctx.store.read();
    let tree = &store.tree;
    let conn = store.tree_conn.clone().unwrap_or(Conn::Connecting);
    let selected = tree.selected.as_deref();
    let rows: Html = tree
        .visible()
        .map(|r| {
            let toggle = {
                let (ctx, path) = (ctx.clone(), r.path.clone());
                Callback::from(move |e: MouseEvent| {
                    // Folding is not selecting.
                    e.stop_propagation();
                    ctx.dispatch(Action::ToggleActor(path.clone()))
                })
            };
            let select = {
                let (ctx, path) = (ctx.clone(), r.path.clone());
                Callback::from(move |_| ctx.dispatch(Action::SelectActor(Some(path.clone()))))
            };
            let status = status_name(r.status);
            let arrow = if !r.has_children {
                " "
            } else if tree.is_collapsed(&r.path) {
                "▸"
            } else {
                "▾"
            };
            let chosen = selected == Some(r.path.as_str());
            html! {
                <tr class={classes!("actor", status, (r.restarts > 0).then_some("restarted"), r.restarted_now.then_some("flash"), chosen.then_some("selected"))}
                    data-kind={r.kind.clone()} data-path={r.path.clone()} onclick={select}>
                    <td class="tree-name" style={format!("padding-left:{}px", 8 + r.depth * 16)}>
                        <button class="toggle" onclick={toggle} disabled={!r.has_children}>{ arrow }</button>
                        <span title={r.path.clone()}>{ store.names.label(&r.path) }</span>
                    </td>
                    <td>{ &r.kind }</td>
                    <td><span class={classes!("status", status)}>{ status }</span></td>
                    <td class={classes!("num", (r.mailbox > 100).then_some("hot"))}>{ r.mailbox }</td>
                    <td class="num">{ r.received }</td>
                    <td class="num">{ r.handled }</td>
                    <td class={classes!("num", (r.failed > 0).then_some("hot"))}>{ r.failed }</td>
                    <td class="num">{ r.rate.map_or("–".into(), |v| format!("{v:.1}")) }</td>
                    <td class="sparks">{ spark(&r.rate_spark, "rate", "msg/s") }{ spark(&r.mailbox_spark, "mailbox", "mailbox") }</td>
                    <td class="num">{ r.restarts }</td>
                    <td class="num">{ r.escalations }</td>
                    <td class="reason">{ r.last_reason.clone().unwrap_or_default() }</td>
                    <td class="gauges">{ for r.gauges.iter().map(|g| html! { <span class="gauge" data-gauge={g.name.clone()}>{ g.label() }</span> }) }</td>
                </tr>
            }
        })
        .collect();
    let detail = selected.map(|path| detail(&ctx, &store, path));
    html! {
        <section class="panel engineer">
            <h2>{ "Actor tree" }
                <span class="sub">{ format!(" {} · {} actors · up {:.0} s · snapshot {} · {}", tree.server_id, tree.actors, tree.uptime_secs, tree.seq, conn.label()) }</span>
            </h2>
            <div class={classes!("observer", detail.is_some().then_some("with-detail"))}>
                <div class="tree-wrap"><table class="tree" id="tree">
                    <thead><tr>
                        <th>{ "Actor" }</th><th>{ "Kind" }</th><th>{ "Status" }</th><th>{ "Mailbox" }</th>
                        <th>{ "Received" }</th><th>{ "Handled" }</th><th>{ "Failed" }</th><th>{ "msg/s" }</th>
                        <th title="message rate and mailbox, last minutes">{ "msg/s · mailbox" }</th>
                        <th>{ "Restarts" }</th><th>{ "Escalations" }</th><th>{ "Last reason" }</th><th>{ "Gauges" }</th>
                    </tr></thead>
                    <tbody>{ rows }</tbody>
                </table></div>
                { detail.unwrap_or_default() }
            </div>
        </section>
    }
}

/// The selected actor's pane: what it is, its figures, its children and its restart history.
fn detail(ctx: &Ctx, store: &Store, path: &str) -> Html {
    let close = {
        let ctx = ctx.clone();
        Callback::from(move |_| ctx.dispatch(Action::SelectActor(None)))
    };
    let names = &store.names;
    let Some(r) = store.tree.selected_row() else {
        return html! {
            <aside class="actor-detail" id="actor-detail">
                <h3>{ names.describe(path) }<button class="close" onclick={close}>{ "×" }</button></h3>
                <p class="empty">{ "This actor is gone from the tree." }</p>
            </aside>
        };
    };
    let children = r.children.iter().map(|c| {
        let (ctx, c2) = (ctx.clone(), c.clone());
        let pick = Callback::from(move |_| ctx.dispatch(Action::SelectActor(Some(c2.clone()))));
        html! { <li><a onclick={pick} title={c.clone()} data-path={c.clone()}>{ names.label(c) }</a></li> }
    });
    let events = r.events.iter().rev().map(|e| {
        let kind = match e.kind {
            SupervisionEventKind::Restart => "restart",
            SupervisionEventKind::Escalation => "escalation",
        };
        html! {
            <li class={classes!("event", kind)}>
                <span class="when">{ e.at.format("%H:%M:%S").to_string() }</span>
                <span class="what">{ kind }</span>
                <span class="reason">{ &e.reason }</span>
            </li>
        }
    });
    let status = status_name(r.status);
    html! {
        <aside class="actor-detail" id="actor-detail" data-path={r.path.clone()}>
            <h3>{ names.describe(&r.path) }<button class="close" onclick={close}>{ "×" }</button></h3>
            <dl>
                <dt>{ "Kind" }</dt><dd>{ &r.kind }</dd>
                <dt>{ "Status" }</dt><dd><span class={classes!("status", status)}>{ status }</span></dd>
                <dt>{ "Path" }</dt><dd class="mono">{ &r.path }</dd>
                <dt>{ "Started" }</dt><dd>{ r.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string() }</dd>
                <dt>{ "Mailbox" }</dt><dd class="num">{ r.mailbox }</dd>
                <dt>{ "Messages" }</dt>
                <dd class="num">{ format!("{} received · {} handled · {} failed", r.received, r.handled, r.failed) }</dd>
                <dt>{ "msg/s" }</dt><dd class="num">{ r.rate.map_or("–".into(), |v| format!("{v:.1}")) }</dd>
                <dt>{ "Supervision" }</dt>
                <dd>{ format!("{} restarts · {} escalations", r.restarts, r.escalations) }</dd>
                if let Some(e) = &r.last_escalation { <dt>{ "Last escalation" }</dt><dd class="reason">{ e }</dd> }
            </dl>
            <div class="detail-sparks">
                <div>{ "msg/s" }{ spark(&r.rate_spark, "rate", "msg/s") }</div>
                <div>{ "mailbox" }{ spark(&r.mailbox_spark, "mailbox", "mailbox") }</div>
            </div>
            if !r.gauges.is_empty() {
                <h4>{ "State" }</h4>
                <ul class="detail-gauges">{ for r.gauges.iter().map(|g| html! { <li data-gauge={g.name.clone()}>{ g.label() }</li> }) }</ul>
            }
            <h4>{ format!("Children ({})", r.children.len()) }</h4>
            if r.children.is_empty() { <p class="dim">{ "none" }</p> } else { <ul class="children">{ for children }</ul> }
            <h4>{ "Restart history" }</h4>
            if r.events.is_empty() { <p class="dim">{ "no restarts" }</p> } else { <ul class="events">{ for events }</ul> }
        </aside>
    }
}
