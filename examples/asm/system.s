# system.s — a tour of the system instructions a monitor needs (not meant to run in user mode).
.intel_syntax noprefix
.text
        cli
        lgdt    [rdi]
        lidt    [rdi+10]
        mov     ax, 0x10
        mov     ds, ax
        mov     ss, ax
        ltr     word ptr [rsi]
        mov     rax, cr0
        or      eax, 1
        mov     cr0, rax
        mov     cr3, rdx
        mov     rax, cr8
        mov     dr7, rax
        mov     ecx, 0xc0000080         # IA32_EFER
        rdmsr
        bts     eax, 8
        wrmsr
        in      al, 0x60
        out     0x80, al
        mov     dx, 0x3f8
        out     dx, al
        in      eax, dx
        invlpg  [rbx]
        wbinvd
        clflush byte ptr [rbx+64]
        mfence
        swapgs
        fxsave64 [rsp]
        xsave   [rsp+512]
        jmp     fword ptr [rbx]         # far jump through m16:32
        rex64 jmp fword ptr [rbx]       # m16:64 (GNU spelling; `jmp tbyte ptr` also accepted by uvt asm)
        lretq
        iretq
        sysretq
        vmcall
        vmmcall
        hlt
