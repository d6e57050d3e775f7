//! Linux: sets the budget hook on a callback that has been running for a while.
//!
//! Each watched Lua state publishes a sequence number, odd while one of its callbacks runs.
//! One thread wakes every [`PERIOD`]; a number found odd and unchanged since the last wake
//! means one callback has run for at least that long, and the thread signals the thread running
//! it. The handler, on that thread, sets the count hook with `lua_sethook`, which Lua documents
//! as safe to call from a signal handler (ldebug.c; `lua.c` stops scripts on Ctrl-C so). The
//! handler reads only this thread's [`ARMABLE`] and [`ARMED`] besides.
//!
//! Behaving callbacks pay two relaxed stores and no hook.

use std::ffi::c_int;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, Ordering, compiler_fence};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::{self, Thread};
use std::time::Duration;

use super::hooked::Budget;

/// How often the watchdog looks: a runaway callback is armed after one to two periods.
const PERIOD: Duration = Duration::from_millis(5);

thread_local! {
    /// The budget of the callback running on this thread, while it may be armed.
    static ARMABLE: AtomicPtr<Budget> = const { AtomicPtr::new(ptr::null_mut()) };
    /// Whether the handler armed it.
    static ARMED: AtomicBool = const { AtomicBool::new(false) };
    /// This thread's kernel id, once asked.
    static TID: AtomicI32 = const { AtomicI32::new(0) };
}

/// A Lua state's registration with the watchdog; unregistered when dropped.
pub(super) struct Watch(Arc<Shared>);

/// What the watchdog thread reads of one Lua state.
struct Shared {
    /// Odd while a callback runs.
    sequence: AtomicU64,
    /// The kernel id of the thread running the callback.
    tid: AtomicI32,
    /// The sequence number the watchdog saw last time (its own).
    seen: AtomicU64,
}

impl Watch {
    /// `None` where no signal could be taken: the budget hook stays set then.
    pub(super) fn new() -> Option<Watch> {
        let watchdog = Watchdog::get()?;
        let shared = Arc::new(Shared {
            sequence: AtomicU64::new(0),
            tid: AtomicI32::new(0),
            seen: AtomicU64::new(0),
        });
        watchdog.watched.lock().ok()?.push(Arc::downgrade(&shared));
        watchdog.thread.unpark();
        Some(Watch(shared))
    }

    /// A callback of `budget` starts on this thread.
    pub(super) fn start(&self, budget: &Budget) {
        let tid = TID.with(|tid| match tid.load(Ordering::Relaxed) {
            0 => {
                // SAFETY: no preconditions.
                let id = unsafe { libc::gettid() };
                tid.store(id, Ordering::Relaxed);
                id
            }
            id => id,
        });
        self.0.tid.store(tid, Ordering::Relaxed);
        ARMABLE.with(|armable| armable.store(ptr::from_ref(budget).cast_mut(), Ordering::Relaxed));
        compiler_fence(Ordering::SeqCst);
        self.0.advance();
    }

    /// The callback returned: true if the handler armed its hook meanwhile (for the caller to
    /// remove).
    pub(super) fn stop(&self) -> bool {
        self.0.advance();
        ARMABLE.with(|armable| armable.store(ptr::null_mut(), Ordering::Relaxed));
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

/// The watchdog thread and its signal.
struct Watchdog {
    signal: c_int,
    watched: Mutex<Vec<Weak<Shared>>>,
    thread: Thread,
}

static WATCHDOG: OnceLock<Option<Watchdog>> = OnceLock::new();

impl Watchdog {
    fn get() -> Option<&'static Watchdog> {
        WATCHDOG
            .get_or_init(|| {
                let signal = install_handler()?;
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
        loop {
            let idle = {
                let Ok(mut watched) = self.watched.lock() else {
                    return;
                };
                watched.retain(|watch| watch.strong_count() > 0);
                for watch in watched.iter().filter_map(Weak::upgrade) {
                    let sequence = watch.sequence.load(Ordering::Relaxed);
                    let seen = watch.seen.swap(sequence, Ordering::Relaxed);
                    if sequence % 2 == 1 && sequence == seen {
                        let tid = watch.tid.load(Ordering::Relaxed);
                        // tgkill reaches only threads of this process. Should that thread have
                        // ended and its id gone to another of ours, the handler finds nothing
                        // armable there and returns.
                        // SAFETY: a plain system call.
                        unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, self.signal) };
                    }
                }
                watched.is_empty()
            };
            if idle {
                thread::park();
            } else {
                thread::sleep(PERIOD);
            }
        }
    }
}

/// Takes the first real-time signal nobody handles. `SA_RESTART`: a system call the signal
/// interrupts (in a Rust function a script called) resumes.
fn install_handler() -> Option<c_int> {
    (libc::SIGRTMIN()..=libc::SIGRTMAX()).find(|&signal| {
        // SAFETY: `sigaction` with valid pointers; the handler only does what the module
        // docs say.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, ptr::null(), &mut current) != 0
                || current.sa_sigaction != libc::SIG_DFL
            {
                return false;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, ptr::null_mut()) == 0
        }
    })
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
