/* tools/mingw-compat/thread-power-throttling.h: what Debian 12's MinGW-w64 headers (v10) lack for
 * whisper.cpp's ggml on Windows: THREAD_POWER_THROTTLING_STATE and its two constants, as the
 * Windows SDK defines them (processthreadsapi.h; SetThreadInformation and ThreadPowerThrottling
 * are in these headers already). tools/windows-check.sh force-includes it into C compiled for
 * x86_64-pc-windows-gnu only when the installed headers lack the type. */
#ifndef PITBOX_THREAD_POWER_THROTTLING_H
#define PITBOX_THREAD_POWER_THROTTLING_H
#ifdef _WIN32
typedef struct _THREAD_POWER_THROTTLING_STATE {
    unsigned long Version;
    unsigned long ControlMask;
    unsigned long StateMask;
} THREAD_POWER_THROTTLING_STATE, *PTHREAD_POWER_THROTTLING_STATE;
#define THREAD_POWER_THROTTLING_CURRENT_VERSION 1
#define THREAD_POWER_THROTTLING_EXECUTION_SPEED 0x1
#define THREAD_POWER_THROTTLING_VALID_FLAGS THREAD_POWER_THROTTLING_EXECUTION_SPEED
#endif
#endif
