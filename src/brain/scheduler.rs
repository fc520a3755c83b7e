//! The thread that writes a loaded model's replies: it owns the model's context
//! ([`super::slots::Slots`]), takes waiting replies into free slots, and steps all of them
//! together until the brain closes it.
//!
//! Waiting replies are taken in turn per owner (a user, the terminal), not first-come: the
//! owner with the fewest replies in the slots goes first, then the one served longest ago, so a
//! program sending fifty cannot starve the card.

use super::slots::{Order, Slots};
use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};

/// Replies waiting for a slot, shared by the brain (which pushes) and the thread (which takes).
#[derive(Default)]
pub struct Queue {
    state: Mutex<Waiting>,
    wake: Condvar,
}

#[derive(Default)]
struct Waiting {
    orders: VecDeque<Order>,
    /// Each owner's last turn.
    served: HashMap<i64, u64>,
    turn: u64,
    closed: bool,
}

impl Queue {
    /// Adds `order`; returns how many replies were waiting before it, or the order back when
    /// the queue is closed.
    pub fn push(&self, order: Order) -> Result<usize, Order> {
        let mut state = self.state.lock().expect("queue");
        if state.closed {
            return Err(order);
        }
        let ahead = state.orders.len();
        state.orders.push_back(order);
        self.wake.notify_one();
        Ok(ahead)
    }

    /// Whether it was closed: the thread is ending, or has ended.
    pub fn is_closed(&self) -> bool {
        self.state.lock().expect("queue").closed
    }

    /// Takes every waiting reply out (dropping them tells their listeners).
    pub fn drain(&self) -> Vec<Order> {
        self.state.lock().expect("queue").orders.drain(..).collect()
    }

    /// Tells the thread to end once its replies are done.
    pub fn close(&self) {
        self.state.lock().expect("queue").closed = true;
        self.wake.notify_all();
    }

    /// The next reply by turn; waits for one when `wait`. `Err` once closed and empty.
    fn next(&self, slots: &Slots<'_>, wait: bool) -> Result<Option<Order>, Closed> {
        let mut state = self.state.lock().expect("queue");
        while wait && state.orders.is_empty() && !state.closed {
            state = self.wake.wait(state).expect("queue");
        }
        if state.orders.is_empty() {
            return if state.closed { Err(Closed) } else { Ok(None) };
        }
        let Waiting { orders, served, .. } = &*state;
        let pick = (0..orders.len())
            .min_by_key(|&i| {
                let owner = orders[i].owner;
                (slots.writing_for(owner), served.get(&owner).copied().unwrap_or(0), i)
            })
            .expect("not empty");
        let order = state.orders.remove(pick).expect("picked from the queue");
        state.turn += 1;
        let turn = state.turn;
        state.served.insert(order.owner, turn);
        Ok(Some(order))
    }
}

struct Closed;

/// Writes replies in `slots` until `queue` is closed and every reply has ended.
pub fn run(queue: &Queue, slots: &mut Slots<'_>) {
    loop {
        while slots.has_free() {
            match queue.next(slots, slots.is_idle()) {
                Ok(Some(order)) => slots.admit(order),
                Ok(None) => break,
                Err(Closed) if slots.is_idle() => return,
                Err(Closed) => break,
            }
        }
        slots.step();
    }
}
