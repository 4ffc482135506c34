#include <stddef.h>
#include <stdint.h>

// libFuzzer's driver, in the runtime that -sanitize=fuzzer links. SwiftPM gives every
// executable a main of its own, so a fuzz target calls the driver from there.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
