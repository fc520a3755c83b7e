-- Kept conversations (issue 27): the card's chat survives a reload and a restart. One row per
-- conversation, owned by one user (another user's reads as absent), and one row per message in
-- order. The model a conversation was held with is kept as its id, not a reference: deleting
-- the model keeps the text. Times are Unix milliseconds. Keep in step with the other backend.
CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    model_id    TEXT NOT NULL,
    title       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
-- A person's latest conversations first.
CREATE INDEX conversations_by_user ON conversations (user_id, updated_at);
CREATE TABLE conversation_messages (
    conversation_id  INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    role             TEXT NOT NULL,
    content          TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
);
