# sum.s — uint64_t sum(const uint64_t *v, uint64_t n): System V function summing n qwords.
# uvt asm examples/asm/sum.s --listing      (also assembles with: as --64 sum.s)
.intel_syntax noprefix
.text
.globl sum
sum:
        xor     eax, eax                # total = 0
        test    rsi, rsi
        je      done
again:
        add     rax, qword ptr [rdi]
        add     rdi, 8
        dec     rsi
        jne     again
done:
        ret
