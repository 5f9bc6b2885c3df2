/* Run fuzz_sim.c's LLVMFuzzerTestOneInput over files without libFuzzer (any C compiler):
 *
 *   cc -fsanitize=address,undefined -Icsrc csrc/[a-z]*.c csrc/fuzz/fuzz_sim.c csrc/fuzz/replay.c -o replay
 *   ./replay csrc/fuzz/corpus/[a-z]*     (every .c of csrc/, every seed)
 *
 * tests/hardening/test_fuzz_corpus.py does this with gcc, so the seed corpus is a regression
 * suite of the ordinary test run; csrc/fuzz/run_fuzz.sh is the real fuzzer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        long n;
        uint8_t *buf;
        if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 2;
        }
        buf = malloc(n > 0 ? (size_t)n : 1);
        if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
            fprintf(stderr, "replay: cannot read %s\n", argv[i]);
            return 2;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
    }
    printf("replay: %d inputs, no crash\n", argc - 1);
    return 0;
}
