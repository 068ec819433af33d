// A conversation opened from a search that sync does not list (chat/static/js/merge.js, data.extra): a
// complete sync does not drop it, as it drops one transferred away; once a sync lists it, it is a live one.
import assert from "node:assert/strict";
import { test } from "node:test";

import { dropConversation, mergeSync, newData, upsertConversation } from "../../chat/static/js/merge.js";

const conv = (id) => ({ id, state: "open", updated_at: "2024-12-05T10:00:00Z", contact: { number: "+12125550199" } });

test("a complete sync keeps a conversation opened from a search and drops one it no longer lists", () => {
  const data = newData();
  upsertConversation(data, conv(1));
  upsertConversation(data, conv(2));
  upsertConversation(data, { ...conv(9), state: "closed" });
  data.extra.add(9); // opened from a search: sync never listed it
  const { dropped } = mergeSync(data, { conversations: [conv(1)], messages: [], statuses: [] });
  assert.deepEqual(dropped, [2]);
  assert.deepEqual([...data.conversations.keys()].sort(), [1, 9]);
});

test("once a sync lists it, it is a live conversation; forgetting it forgets it as found", () => {
  const data = newData();
  upsertConversation(data, conv(9));
  data.extra.add(9);
  mergeSync(data, { conversations: [conv(9)], messages: [], statuses: [] });
  assert.equal(data.extra.has(9), false);
  data.extra.add(9);
  dropConversation(data, 9);
  assert.equal(data.extra.has(9), false);
  assert.equal(data.conversations.has(9), false);
});
