# strings.s — string instructions and RIP-relative data: copies a message with rep movsb, then returns its length
# computed with repne scasb. Position independent; two sections placed one after the other by `uvt asm`.
.intel_syntax noprefix
.text
copy_and_measure:                       # rdi = destination buffer (at least 64 bytes)
        push    rdi
        lea     rsi, [rip+message]
        mov     ecx, dword ptr [rip+message_len]
        rep movsb
        pop     rdi
        xor     eax, eax
        mov     rcx, -1
        repne scasb                     # find the NUL copied from the message
        mov     rax, -2
        sub     rax, rcx                # length without the NUL
        ret
        .align  16, 0xcc
.data
message:        .asciz "hello from uvt asm\n"
        .align  4
message_len:    .long 20
