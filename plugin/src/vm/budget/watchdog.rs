//! Linux: sets the budget hook on a callback that has been running for a while.
//!
//! Each watched Lua state publishes a sequence number, odd while one of its callbacks runs.
//! One thread wakes every [`PERIOD`]; a number found odd and unchanged since the last wake
//! means one callback has run for at least that long, and the thread signals the thread running
//! it. The handler, on that thread, sets the count hook with `lua_sethook`, which Lua documents
//! as safe to call from a signal handler (ldebug.c; `lua.c` stops scripts on Ctrl-C so). The
//! handler reads only this thread's [`ARMABLE`] and [`ARMED`] besides.
//!
//! Behaving callbacks pay two relaxed stores and a relaxed load, and no hook.
//!
//! What could go wrong is checked, and each failure falls back to the hook set all the time
//! (slower, never unsafe): the handler acknowledges each arming, and a state whose signal goes
//! unacknowledged for a few periods is marked [`Watch::unarmable`]; the watchdog sends the
//! signal only while its disposition is still our handler (another library may have taken it);
//! the runtime checks once per frame that the signal is neither blocked on its thread nor taken
//! ([`Watch::deliverable`]). A state is signalled once per callback. With no callback running
//! for a while the thread sleeps until one starts. Nested callbacks of two states on one thread
//! restore the outer one's registration when the inner one ends.

use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, Ordering, compiler_fence,
};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::Duration;

use super::BudgetWatchdog;
use super::hooked::Budget;

/// How often the watchdog looks: a runaway callback is armed after one to two periods.
const PERIOD: Duration = Duration::from_millis(5);
/// Periods a signalled state may stay unacknowledged before it is marked unarmable: generous,
/// as a thread descheduled on a busy machine takes the signal late.
const ACK_PERIODS: u32 = 20;
/// Idle periods (no callback running anywhere) before the thread sleeps...
const IDLE_PERIODS: u32 = 20;
/// ...for at most this long, or until a callback starts.
const SLEEP: Duration = Duration::from_millis(100);

/// The watchdog thread sleeps: the next callback to start wakes it.
static SLEEPING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The budget of the callback running on this thread, while it may be armed.
    static ARMABLE: AtomicPtr<Budget> = const { AtomicPtr::new(ptr::null_mut()) };
    /// Whether the handler armed it.
    static ARMED: AtomicBool = const { AtomicBool::new(false) };
    /// This thread's kernel id, once asked.
    static TID: AtomicI32 = const { AtomicI32::new(0) };
}

/// A Lua state's registration with the watchdog; unregistered when dropped.
pub(super) struct Watch {
    shared: Arc<Shared>,
    watchdog: &'static Watchdog,
}

/// What the watchdog thread reads of one Lua state.
struct Shared {
    /// Odd while a callback runs.
    sequence: AtomicU64,
    /// The kernel id of the thread running the callback.
    tid: AtomicI32,
    /// The sequence number the watchdog saw last time (its own).
    seen: AtomicU64,
    /// The sequence number of the callback the watchdog signalled last (its own)...
    signaled: AtomicU64,
    /// ...the periods it has waited since for the handler's acknowledgement (its own)...
    waits: AtomicU32,
    /// ...and the sequence number of the callback the handler armed last.
    acknowledged: AtomicU64,
    /// The signal did not arrive, or could not be sent: the budget sets its hook for good.
    unarmable: AtomicBool,
}

impl Watch {
    /// `None` where no signal could be taken, or `BudgetWatchdog::Off`: the budget hook stays
    /// set then.
    pub(super) fn new(choice: BudgetWatchdog) -> Option<Watch> {
        let watchdog = Watchdog::get(choice)?;
        let shared = Arc::new(Shared {
            sequence: AtomicU64::new(0),
            tid: AtomicI32::new(0),
            seen: AtomicU64::new(0),
            signaled: AtomicU64::new(0),
            waits: AtomicU32::new(0),
            acknowledged: AtomicU64::new(0),
            unarmable: AtomicBool::new(false),
        });
        watchdog.watched.lock().ok()?.push(Arc::downgrade(&shared));
        watchdog.thread.unpark();
        Some(Watch { shared, watchdog })
    }

    /// Whether arming failed (see the module docs): the budget must set its hook for good.
    pub(super) fn unarmable(&self) -> bool {
        self.shared.unarmable.load(Ordering::Relaxed)
    }

    /// Whether the signal can reach a callback on this thread: not blocked here, and its
    /// disposition still our handler. Two system calls: once per frame, not per callback.
    pub(super) fn deliverable(&self) -> bool {
        let signal = self.watchdog.signal;
        // SAFETY: `pthread_sigmask` and `sigaction` only read into the zeroed values given.
        unsafe {
            let mut blocked: libc::sigset_t = std::mem::zeroed();
            if libc::pthread_sigmask(libc::SIG_BLOCK, ptr::null(), &mut blocked) != 0
                || libc::sigismember(&blocked, signal) == 1
            {
                return false;
            }
        }
        handler_installed(signal)
    }

    /// A callback of `budget` starts on this thread; returns the budget that was armable here
    /// before (a callback of another state this one runs inside), for [`Watch::stop`].
    pub(super) fn start(&self, budget: &Budget) -> *mut Budget {
        let tid = TID.with(|tid| match tid.load(Ordering::Relaxed) {
            0 => {
                // SAFETY: no preconditions.
                let id = unsafe { libc::gettid() };
                tid.store(id, Ordering::Relaxed);
                id
            }
            id => id,
        });
        self.shared.tid.store(tid, Ordering::Relaxed);
        let outer = ARMABLE
            .with(|armable| armable.swap(ptr::from_ref(budget).cast_mut(), Ordering::Relaxed));
        compiler_fence(Ordering::SeqCst);
        self.shared.advance();
        if SLEEPING.load(Ordering::Relaxed) && SLEEPING.swap(false, Ordering::Relaxed) {
            self.watchdog.thread.unpark();
        }
        outer
    }

    /// The callback returned: true if the handler armed its hook meanwhile (for the caller to
    /// remove). `outer` is what [`Watch::start`] returned.
    pub(super) fn stop(&self, outer: *mut Budget) -> bool {
        self.shared.advance();
        ARMABLE.with(|armable| armable.store(outer, Ordering::Relaxed));
        // The handler runs on this thread: after this fence it cannot arm any more, and
        // whatever it armed before shows in `ARMED`.
        compiler_fence(Ordering::SeqCst);
        ARMED.with(|armed| armed.swap(false, Ordering::Relaxed))
    }
}

impl Shared {
    /// One writer (the thread running callbacks): a load and a store, no locked instruction.
    fn advance(&self) {
        let next = self.sequence.load(Ordering::Relaxed) + 1;
        self.sequence.store(next, Ordering::Relaxed);
    }
}

impl Watch {
    /// Called by the signal handler once it armed this state's callback.
    pub(super) fn acknowledge(&self) {
        let sequence = self.shared.sequence.load(Ordering::Relaxed);
        self.shared.acknowledged.store(sequence, Ordering::Relaxed);
    }
}

/// The watchdog thread and its signal.
struct Watchdog {
    signal: c_int,
    watched: Mutex<Vec<Weak<Shared>>>,
    thread: Thread,
}

static WATCHDOG: OnceLock<Option<Watchdog>> = OnceLock::new();

impl Watchdog {
    /// The process's watchdog, started on first use with the signal `choice` asks for (the
    /// first state's choice holds for the process); `None` when off or no signal is free.
    fn get(choice: BudgetWatchdog) -> Option<&'static Watchdog> {
        if choice == BudgetWatchdog::Off {
            return None;
        }
        WATCHDOG
            .get_or_init(|| {
                let signal = match choice {
                    BudgetWatchdog::Signal(signal) => install_handler_on(signal)?,
                    _ => install_handler()?,
                };
                let thread = thread::Builder::new()
                    .name("bevy_lunar watchdog".into())
                    .spawn(|| {
                        // `get_or_init` returns before this thread can see the watchdog.
                        let watchdog = loop {
                            match WATCHDOG.get() {
                                Some(Some(watchdog)) => break watchdog,
                                _ => thread::park(),
                            }
                        };
                        watchdog.watch();
                    })
                    .ok()?
                    .thread()
                    .clone();
                thread.unpark();
                Some(Watchdog {
                    signal,
                    watched: Mutex::new(Vec::new()),
                    thread,
                })
            })
            .as_ref()
    }

    fn watch(&self) {
        // SAFETY: no preconditions.
        let pid = unsafe { libc::getpid() };
        let mut idle_periods = 0;
        loop {
            let (nothing_watched, any_running) = {
                let Ok(mut watched) = self.watched.lock() else {
                    return;
                };
                watched.retain(|watch| watch.strong_count() > 0);
                let mut any_running = false;
                for watch in watched.iter().filter_map(Weak::upgrade) {
                    let sequence = watch.sequence.load(Ordering::Relaxed);
                    let seen = watch.seen.swap(sequence, Ordering::Relaxed);
                    any_running |= sequence % 2 == 1;
                    if sequence % 2 == 1 && sequence == seen {
                        self.arm(&watch, pid, sequence);
                    }
                }
                (watched.is_empty(), any_running)
            };
            idle_periods = if any_running { 0 } else { idle_periods + 1 };
            if nothing_watched {
                thread::park();
            } else if idle_periods >= IDLE_PERIODS {
                // A callback starting now wakes the thread; one that started just before this
                // store and saw no sleeper is found after `SLEEP` at the latest.
                SLEEPING.store(true, Ordering::Relaxed);
                thread::park_timeout(SLEEP);
                SLEEPING.store(false, Ordering::Relaxed);
                idle_periods = 0;
            } else {
                thread::sleep(PERIOD);
            }
        }
    }

    /// A callback of `watch` has run for a period: signal its thread, once; if the handler
    /// does not acknowledge within a few periods, or the signal is no longer ours to send, the
    /// state is marked unarmable.
    fn arm(&self, watch: &Shared, pid: libc::pid_t, sequence: u64) {
        if watch.acknowledged.load(Ordering::Relaxed) == sequence
            || watch.unarmable.load(Ordering::Relaxed)
        {
            return;
        }
        if watch.signaled.load(Ordering::Relaxed) == sequence {
            if watch.waits.fetch_add(1, Ordering::Relaxed) + 1 >= ACK_PERIODS {
                watch.unarmable.store(true, Ordering::Relaxed);
            }
            return;
        }
        // Never send a signal whose disposition is back to the default (which for a real-time
        // signal ends the process) or another's.
        if !handler_installed(self.signal) {
            watch.unarmable.store(true, Ordering::Relaxed);
            return;
        }
        watch.signaled.store(sequence, Ordering::Relaxed);
        watch.waits.store(0, Ordering::Relaxed);
        let tid = watch.tid.load(Ordering::Relaxed);
        // tgkill reaches only threads of this process. Should that thread have ended and its id
        // gone to another of ours, the handler finds nothing armable there and returns.
        // SAFETY: a plain system call.
        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, self.signal) };
    }
}

/// Takes the first real-time signal nobody handles.
fn install_handler() -> Option<c_int> {
    (libc::SIGRTMIN()..=libc::SIGRTMAX()).find_map(install_handler_on)
}

/// Takes `signal` if nobody handles it. `SA_RESTART`: a system call the signal interrupts (in
/// a Rust function a script called) resumes.
fn install_handler_on(signal: c_int) -> Option<c_int> {
    // SAFETY: `sigaction` with valid pointers; the handler only does what the module docs say.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, ptr::null(), &mut current) != 0
            || current.sa_sigaction != libc::SIG_DFL
        {
            return None;
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        (libc::sigaction(signal, &action, ptr::null_mut()) == 0).then_some(signal)
    }
}

/// Whether `signal`'s disposition is still our handler.
fn handler_installed(signal: c_int) -> bool {
    // SAFETY: `sigaction` only reads into the zeroed value given.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, ptr::null(), &mut current) == 0
            && current.sa_sigaction == on_signal as extern "C" fn(c_int) as libc::sighandler_t
    }
}

extern "C" fn on_signal(_: c_int) {
    let budget = ARMABLE.with(|armable| armable.load(Ordering::Relaxed));
    if budget.is_null() || ARMED.with(|armed| armed.swap(true, Ordering::Relaxed)) {
        return;
    }
    // SAFETY: `ARMABLE` is set only between `Watch::start` and `Watch::stop`, around a callback
    // of this budget on this thread, which this handler interrupts: the budget is alive.
    unsafe { (*budget).arm() };
}
