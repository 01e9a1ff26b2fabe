-- Access tokens carry the generation they were issued under; bumping it (logout, password change,
-- refresh-token reuse) ends every access token issued before, without waiting for expiry.
ALTER TABLE users ADD COLUMN token_generation BIGINT NOT NULL DEFAULT 0;
