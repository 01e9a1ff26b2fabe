//! The engineers' view of the live actor tree (`/admin/actors/stream`): collapsible tree, status,
//! mailbox length, message counts and rates (computed here from consecutive snapshots), restarts
//! highlighted, and each actor's own gauges (a video relay's viewers, frames/s, bitrate, drops).
//! Reads no env vars.

use pitbox_schema::wire::ActorStatus;
use yew::prelude::*;

use super::Ctx;
use crate::model::store::{short_id, Action, Conn};

#[function_component(Engineer)]
pub fn engineer() -> Html {
    let Some(ctx) = use_context::<Ctx>() else { return html! {} };
    let store = ctx.store.read();
    let tree = &store.tree;
    let conn = store.tree_conn.clone().unwrap_or(Conn::Connecting);
    let rows: Html = tree
        .visible()
        .map(|r| {
            let toggle = {
                let (ctx, path) = (ctx.clone(), r.path.clone());
                Callback::from(move |_| ctx.dispatch(Action::ToggleActor(path.clone())))
            };
            let status = match r.status {
                ActorStatus::Running => "running",
                ActorStatus::Restarting => "restarting",
                ActorStatus::Stopped => "stopped",
            };
            // A driver's session shows the driver's name (ids are long); the path is the tooltip.
            let label = |r: &crate::model::tree::Row| match store.cars.get(&r.name) {
                Some(car) if r.kind == "driver_session" => format!("{} ({})", car.name(), short_id(&r.name)),
                _ => r.name.clone(),
            };
            let arrow = if !r.has_children {
                " "
            } else if tree.is_collapsed(&r.path) {
                "▸"
            } else {
                "▾"
            };
            html! {
                <tr class={classes!("actor", status, (r.restarts > 0).then_some("restarted"), r.restarted_now.then_some("flash"))}
                    data-kind={r.kind.clone()} data-path={r.path.clone()}>
                    <td class="tree-name" style={format!("padding-left:{}px", 8 + r.depth * 16)}>
                        <button class="toggle" onclick={toggle} disabled={!r.has_children}>{ arrow }</button>
                        <span title={r.path.clone()}>{ label(r) }</span>
                    </td>
                    <td>{ &r.kind }</td>
                    <td><span class={classes!("status", status)}>{ status }</span></td>
                    <td class={classes!("num", (r.mailbox > 100).then_some("hot"))}>{ r.mailbox }</td>
                    <td class="num">{ r.received }</td>
                    <td class="num">{ r.handled }</td>
                    <td class={classes!("num", (r.failed > 0).then_some("hot"))}>{ r.failed }</td>
                    <td class="num">{ r.rate.map_or("–".into(), |v| format!("{v:.1}")) }</td>
                    <td class="num">{ r.restarts }</td>
                    <td class="num">{ r.escalations }</td>
                    <td class="reason">{ r.last_reason.clone().unwrap_or_default() }</td>
                    <td class="gauges">{ for r.gauges.iter().map(|g| html! { <span class="gauge" data-gauge={g.name.clone()}>{ g.label() }</span> }) }</td>
                </tr>
            }
        })
        .collect();
    html! {
        <section class="panel engineer">
            <h2>{ "Actor tree" }
                <span class="sub">{ format!(" {} · {} actors · up {:.0} s · snapshot {} · {}", tree.server_id, tree.actors, tree.uptime_secs, tree.seq, conn.label()) }</span>
            </h2>
            <table class="tree" id="tree">
                <thead><tr>
                    <th>{ "Actor" }</th><th>{ "Kind" }</th><th>{ "Status" }</th><th>{ "Mailbox" }</th>
                    <th>{ "Received" }</th><th>{ "Handled" }</th><th>{ "Failed" }</th><th>{ "msg/s" }</th>
                    <th>{ "Restarts" }</th><th>{ "Escalations" }</th><th>{ "Last reason" }</th><th>{ "Gauges" }</th>
                </tr></thead>
                <tbody>{ rows }</tbody>
            </table>
        </section>
    }
}
