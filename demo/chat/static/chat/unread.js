// Unread counts, counted by the page itself (docs/chat.md, "Unread counts, and their
// cost"): the server publishes a message once, on its room's channel, and each page
// counts from the counts it was rendered with and the events of the rooms it follows.
//
// A page knows *which* messages are unread, not only how many: the ids of the newest
// unread messages of each room (and of those mentioning the user), given with the page.
// So an event replayed for a message counted already changes nothing, a deletion removes
// exactly its message, and a read position ("you read room X up to N", from another page)
// removes exactly the ids it covers. Older unread messages, beyond the ids the page was
// given, are a plain number; when a read position falls among them the page asks the
// server again (`stale` below).
//
// Pure: no DOM, no requests. chat.js draws and fetches. Defines `window.chatUnread`.
"use strict";

(function (root) {
  function minimum(values) {
    let found = 0;
    for (const value of values) if (!found || value < found) found = value;
    return found;
  }

  // One membership's count: built from the server's `{room_id, room, read, unread,
  // mentions, ids, mentioning}`.
  class RoomCount {
    constructor(data) {
      this.roomId = data.room_id;
      this.room = data.room;
      this.read = data.read;
      this.ids = new Set(data.ids);
      this.mentioning = new Set(data.mentioning);
      // Unread messages older than the ids given, known by number only, and the id below
      // which they lie (0: the page knows every unread message by its id).
      this.older = Math.max(0, data.unread - data.ids.length);
      this.olderMentions = Math.max(0, data.mentions - data.mentioning.length);
      this.floor = this.older ? minimum(data.ids) : 0;
      this.mentionFloor = this.olderMentions ? minimum(data.mentioning) : 0;
    }

    get unread() { return this.ids.size + this.older; }
    get mentions() { return this.mentioning.size + this.olderMentions; }

    // Whether message `id` by `user` can be unread for `me` and is not among those known
    // by number only.
    countable(id, user, me) {
      return user !== me && id > this.read && !(this.floor && id < this.floor);
    }

    created(message, me, mentionsMe) {
      if (!this.countable(message.id, message.user, me) || this.ids.has(message.id)) return false;
      this.ids.add(message.id);
      if (mentionsMe) this.mentioning.add(message.id);
      return true;
    }

    // An edit: the mention may come or go. A message the page never saw created (its
    // creation was redacted before the page's stream reached it) is counted now.
    updated(message, me, mentionsMe) {
      if (!this.countable(message.id, message.user, me)) return false;
      const before = [this.ids.size, this.mentioning.size];
      this.ids.add(message.id);
      if (!(this.mentionFloor && message.id < this.mentionFloor)) {
        if (mentionsMe) this.mentioning.add(message.id);
        else this.mentioning.delete(message.id);
      }
      return before[0] !== this.ids.size || before[1] !== this.mentioning.size;
    }

    deleted(data, me) {
      if (this.ids.delete(data.id)) {
        this.mentioning.delete(data.id);
        return true;
      }
      if (this.floor && data.id < this.floor && data.id > this.read && data.user !== me && this.older) {
        this.older -= 1;  // whether it mentioned the user is not known here
        return true;
      }
      return false;
    }

    // Returns "stale" when the position falls among the messages known by number only.
    readUpTo(upTo) {
      if (upTo <= this.read) return false;
      this.read = upTo;
      for (const id of [...this.ids]) if (id <= upTo) this.ids.delete(id);
      for (const id of [...this.mentioning]) if (id <= upTo) this.mentioning.delete(id);
      let stale = false;
      if (this.floor && upTo >= this.floor) { this.older = 0; this.floor = 0; }
      else if (this.floor) stale = true;
      if (this.mentionFloor && upTo >= this.mentionFloor) { this.olderMentions = 0; this.mentionFloor = 0; }
      else if (this.mentionFloor) stale = true;
      return stale ? "stale" : true;
    }

    // The server's count again (a refresh): events the page received meanwhile for
    // messages newer than the answer's are kept; deletions it saw are not undone.
    refreshed(data, deleted) {
      const fresh = new RoomCount(data);
      fresh.read = Math.max(fresh.read, this.read);
      const newest = Math.max(fresh.read, ...data.ids);
      for (const id of this.ids) if (id > newest) fresh.ids.add(id);
      for (const id of this.mentioning) if (id > newest) fresh.mentioning.add(id);
      for (const id of deleted) { fresh.ids.delete(id); fresh.mentioning.delete(id); }
      for (const set of [fresh.ids, fresh.mentioning]) {
        for (const id of [...set]) if (id <= fresh.read) set.delete(id);
      }
      return fresh;
    }
  }

  // Every membership's count on one page, by room id.
  class UnreadCounts {
    constructor(rooms, me) {
      this.me = me;
      this.rooms = new Map(rooms.map((data) => [data.room_id, new RoomCount(data)]));
      // Deleted message ids seen, so that a refresh answered before a deletion does not
      // bring the message back.
      this.deletedIds = new Set();
    }

    get(roomId) { return this.rooms.get(roomId); }

    total() {
      let total = 0;
      for (const count of this.rooms.values()) total += count.unread;
      return total;
    }

    // Each returns whether the room's count changed (readUpTo may return "stale").
    created(message, mentionsMe) {
      const count = this.rooms.get(message.room_id);
      return Boolean(count && !this.deletedIds.has(message.id) && count.created(message, this.me, mentionsMe));
    }
    updated(message, mentionsMe) {
      const count = this.rooms.get(message.room_id);
      return Boolean(count && !this.deletedIds.has(message.id) && count.updated(message, this.me, mentionsMe));
    }
    deleted(data) {
      this.deletedIds.add(data.id);
      const count = this.rooms.get(data.room_id);
      return Boolean(count && count.deleted(data, this.me));
    }
    readUpTo(roomId, upTo) {
      const count = this.rooms.get(roomId);
      return count ? count.readUpTo(upTo) : false;
    }
    removed(roomId) { return this.rooms.delete(roomId); }
    refreshed(data) {
      const count = this.rooms.get(data.room_id);
      this.rooms.set(data.room_id, count ? count.refreshed(data, this.deletedIds) : new RoomCount(data));
    }
  }

  root.chatUnread = { UnreadCounts, RoomCount };
})(window);
