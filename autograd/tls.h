#pragma once
// CHAINRULE_HOT_TLS: the TLS model of the thread-locals that hot paths read (the Scalar tape's
// state, the thread's modes, the pool's free lists, the tensor engine's per-thread counters).
//
// The library is compiled as position-independent code (so that it can go into a shared library),
// and there GCC's default for a thread_local is the general-dynamic model: a call to
// __tls_get_addr at every access. The linker turns that call back into one thread-pointer-relative
// load when it links an executable, but only after the compiler has treated it as a call: every
// floating-point register saved to the stack and reloaded around each access. In dot(), which
// reads the tape's state a few times per node, that was a fifth of the lecture's epoch. The
// initial-exec model is one load relative to the thread pointer, in position-independent code too.
// Its one cost: a shared build of chainrule opened with dlopen takes these variables (about 350
// bytes) from glibc's static TLS reserve for such libraries (512 bytes by default).
#define CHAINRULE_HOT_TLS [[gnu::tls_model("initial-exec")]]
