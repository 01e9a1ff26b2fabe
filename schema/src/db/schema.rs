//! diesel table definitions, shared by the SQLite and PostgreSQL migrations (which declare the
//! same columns in each backend's dialect). `diesel.toml` points `diesel print-schema` here.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        token_generation -> BigInt,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        name -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    team_members (team_id, user_id) {
        team_id -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    drivers (id) {
        id -> Text,
        team_id -> Text,
        user_id -> Nullable<Text>,
        name -> Text,
        number -> Integer,
        status -> Text,
        role -> Text,
        avatar_url -> Nullable<Text>,
        last_active -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    racing_sessions (id) {
        id -> Text,
        team_id -> Text,
        driver_id -> Text,
        track -> Text,
        car -> Text,
        started_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
        session_type -> Nullable<Text>,
    }
}

diesel::table! {
    laps (id) {
        id -> Text,
        session_id -> Text,
        driver_id -> Text,
        team_id -> Text,
        lap_number -> Integer,
        lap_time -> Double,
        valid -> Bool,
        fuel_used -> Nullable<Double>,
        sector_times -> Text,
        sample_count -> Integer,
        telemetry -> Binary,
        completed_at -> Timestamp,
        kind -> Text,
        invalid_reasons -> Text,
    }
}

diesel::table! {
    telemetry_samples (id) {
        id -> Text,
        driver_id -> Text,
        session_id -> Nullable<Text>,
        stream_id -> Nullable<Text>,
        seq -> Nullable<BigInt>,
        recorded_at -> Timestamp,
        received_at -> Timestamp,
        data -> Text,
    }
}

diesel::table! {
    coaching_feedback (id) {
        id -> Text,
        team_id -> Text,
        driver_id -> Text,
        lap_id -> Nullable<Text>,
        feedback -> Text,
        confidence -> Double,
        analysis -> Text,
        priority -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    team_messages (id) {
        id -> Text,
        team_id -> Text,
        sender_id -> Text,
        sender_name -> Text,
        content -> Text,
        priority -> Text,
        attachment -> Nullable<Text>,
        sent_at -> Timestamp,
    }
}

diesel::table! {
    message_reads (message_id, user_id) {
        message_id -> Text,
        user_id -> Text,
        read_at -> Timestamp,
    }
}

diesel::table! {
    handoff_requests (id) {
        id -> Text,
        team_id -> Text,
        requester_id -> Text,
        requester_name -> Text,
        from_driver_id -> Nullable<Text>,
        target_driver_id -> Text,
        reason -> Text,
        urgency -> Text,
        status -> Text,
        telemetry_snapshot -> Nullable<Text>,
        requested_at -> Timestamp,
        responded_at -> Nullable<Timestamp>,
        responder_id -> Nullable<Text>,
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        user_id -> Text,
        family_id -> Text,
        token_hash -> Text,
        issued_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(team_members -> teams (team_id));
diesel::joinable!(team_members -> users (user_id));
diesel::joinable!(drivers -> teams (team_id));
diesel::table! {
    track_maps (team_id, track, car_class) {
        team_id -> Text,
        track -> Text,
        car_class -> Text,
        corner_map -> Text,
        outline -> Text,
        length_m -> Double,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    track_turns (team_id, track) {
        team_id -> Text,
        track -> Text,
        turns -> Text,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(racing_sessions -> drivers (driver_id));
diesel::joinable!(laps -> racing_sessions (session_id));
diesel::joinable!(telemetry_samples -> drivers (driver_id));
diesel::joinable!(team_messages -> teams (team_id));
diesel::joinable!(message_reads -> team_messages (message_id));
diesel::joinable!(refresh_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    teams,
    team_members,
    drivers,
    racing_sessions,
    laps,
    telemetry_samples,
    coaching_feedback,
    team_messages,
    message_reads,
    handoff_requests,
    refresh_tokens,
    track_maps,
    track_turns,
);
