// The sanitizer runtimes' options, compiled into every executable of a
// sanitizer build (ADS_SANITIZE; tests/sanitizers/sanitizers.cmake): the unit
// test binaries and the ads and ads-agent binaries the tests start. So a run
// through ctest, scripts/sanitize.sh or the binary by hand has the same
// settings: every finding stops the process with a non-zero exit (the test
// fails), leaks are searched for at exit, and the only suppressions are the
// third-party ones in the .supp files beside this file. ASAN_OPTIONS and
// friends in the environment are read after these (they can add, not remove
// what a CI run relies on unless set on purpose).
#ifndef ADS_SANITIZER_DIR
#error "ADS_SANITIZER_DIR (tests/sanitizers) must be defined"
#endif

#define ADS_SAN_EXPORT extern "C" __attribute__((used, visibility("default")))

ADS_SAN_EXPORT const char* __asan_default_options() {
  return "halt_on_error=1:abort_on_error=0:detect_leaks=1:check_initialization_order=1:"
         "strict_init_order=1:detect_odr_violation=2:allocator_may_return_null=0";
}

ADS_SAN_EXPORT const char* __lsan_default_options() {
  return "suppressions=" ADS_SANITIZER_DIR "/lsan.supp:print_suppressions=0";
}

// ThreadSanitizer (ADS_SANITIZE=thread): the first report ends the process;
// both stacks of a lock-order inversion.
ADS_SAN_EXPORT const char* __tsan_default_options() {
  return "halt_on_error=1:second_deadlock_stack=1:suppressions=" ADS_SANITIZER_DIR "/tsan.supp";
}

ADS_SAN_EXPORT const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:suppressions=" ADS_SANITIZER_DIR "/ubsan.supp";
}
