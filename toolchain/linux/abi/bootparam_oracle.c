/* The C side of the zero-page tests (toolchain/linux/boot-params.test.ts), built by the machine's gcc.
 * struct uv_setup_header and struct uv_boot_params are written here member by member from the documented layout
 * (Documentation/arch/x86/zero-page.rst and boot.rst: names, sizes and order; no offsets), so gcc's offsetof is an
 * oracle the TypeScript constants are compared with.
 *   bootparam_oracle layout       print "name offset size" for the fields toolchain/linux writes or reads
 *   bootparam_oracle dump FILE    read a 4096-byte zero page and print the fields through the struct */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct __attribute__((packed)) uv_setup_header {
  uint8_t setup_sects;
  uint16_t root_flags;
  uint32_t syssize;
  uint16_t ram_size;
  uint16_t vid_mode;
  uint16_t root_dev;
  uint16_t boot_flag;
  uint16_t jump;
  uint32_t header;
  uint16_t version;
  uint32_t realmode_swtch;
  uint16_t start_sys_seg;
  uint16_t kernel_version;
  uint8_t type_of_loader;
  uint8_t loadflags;
  uint16_t setup_move_size;
  uint32_t code32_start;
  uint32_t ramdisk_image;
  uint32_t ramdisk_size;
  uint32_t bootsect_kludge;
  uint16_t heap_end_ptr;
  uint8_t ext_loader_ver;
  uint8_t ext_loader_type;
  uint32_t cmd_line_ptr;
  uint32_t initrd_addr_max;
  uint32_t kernel_alignment;
  uint8_t relocatable_kernel;
  uint8_t min_alignment;
  uint16_t xloadflags;
  uint32_t cmdline_size;
  uint32_t hardware_subarch;
  uint64_t hardware_subarch_data;
  uint32_t payload_offset;
  uint32_t payload_length;
  uint64_t setup_data;
  uint64_t pref_address;
  uint32_t init_size;
  uint32_t handover_offset;
  uint32_t kernel_info_offset;
};

struct __attribute__((packed)) uv_e820_entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};

struct __attribute__((packed)) uv_boot_params {
  uint8_t screen_info[0x40];
  uint8_t apm_bios_info[0x14];
  uint8_t _pad2[4];
  uint64_t tboot_addr;
  uint8_t ist_info[0x10];
  uint64_t acpi_rsdp_addr;
  uint8_t _pad3[8];
  uint8_t hd0_info[16];
  uint8_t hd1_info[16];
  uint8_t sys_desc_table[0x10];
  uint8_t olpc_ofw_header[0x10];
  uint32_t ext_ramdisk_image;
  uint32_t ext_ramdisk_size;
  uint32_t ext_cmd_line_ptr;
  uint8_t _pad4[112];
  uint32_t cc_blob_address;
  uint8_t edid_info[0x80];
  uint8_t efi_info[0x20];
  uint32_t alt_mem_k;
  uint32_t scratch;
  uint8_t e820_entries;
  uint8_t eddbuf_entries;
  uint8_t edd_mbr_sig_buf_entries;
  uint8_t kbd_status;
  uint8_t secure_boot;
  uint8_t _pad5[2];
  uint8_t sentinel;
  uint8_t _pad6[1];
  struct uv_setup_header hdr;
  uint8_t _pad7[0x290 - 0x1f1 - sizeof(struct uv_setup_header)];
  uint32_t edd_mbr_sig_buffer[16];
  struct uv_e820_entry e820_table[128];
  uint8_t _pad8[48];
  uint8_t eddbuf[6 * 82];
  uint8_t _pad9[276];
};

#define BP(f) printf("%s %zu %zu\n", #f, offsetof(struct uv_boot_params, f), sizeof(((struct uv_boot_params *)0)->f))
#define HD(f) printf("hdr.%s %zu %zu\n", #f, offsetof(struct uv_boot_params, hdr) + offsetof(struct uv_setup_header, f), sizeof(((struct uv_setup_header *)0)->f))

int main(int argc, char **argv) {
  if (argc == 2 && argv[1][0] == 'l') {
    printf("sizeof %zu %zu\n", sizeof(struct uv_boot_params), sizeof(struct uv_e820_entry));
    BP(ext_ramdisk_image); BP(ext_ramdisk_size); BP(ext_cmd_line_ptr); BP(alt_mem_k); BP(e820_entries);
    BP(sentinel); BP(hdr); BP(e820_table); BP(efi_info); BP(acpi_rsdp_addr);
    HD(setup_sects); HD(boot_flag); HD(jump); HD(header); HD(version); HD(kernel_version); HD(type_of_loader);
    HD(loadflags); HD(code32_start); HD(ramdisk_image); HD(ramdisk_size); HD(heap_end_ptr); HD(cmd_line_ptr);
    HD(initrd_addr_max); HD(kernel_alignment); HD(relocatable_kernel); HD(xloadflags); HD(cmdline_size);
    HD(pref_address); HD(init_size);
    return 0;
  }
  if (argc == 3 && argv[1][0] == 'd') {
    static struct uv_boot_params bp;
    FILE *f = fopen(argv[2], "rb");
    if (!f || fread(&bp, 1, sizeof bp, f) != sizeof bp) { fprintf(stderr, "cannot read 4096 bytes of %s\n", argv[2]); return 2; }
    fclose(f);
    printf("header %08x version %04x boot_flag %04x\n", bp.hdr.header, bp.hdr.version, bp.hdr.boot_flag);
    printf("type_of_loader %02x loadflags %02x\n", bp.hdr.type_of_loader, bp.hdr.loadflags);
    printf("ramdisk %08x %08x ext %08x %08x\n", bp.hdr.ramdisk_image, bp.hdr.ramdisk_size, bp.ext_ramdisk_image, bp.ext_ramdisk_size);
    printf("cmd_line_ptr %08x ext %08x\n", bp.hdr.cmd_line_ptr, bp.ext_cmd_line_ptr);
    printf("e820_entries %u\n", bp.e820_entries);
    for (unsigned i = 0; i < bp.e820_entries && i < 128; i++)
      printf("e820 %llx %llx %u\n", (unsigned long long)bp.e820_table[i].addr, (unsigned long long)bp.e820_table[i].size, bp.e820_table[i].type);
    return 0;
  }
  fprintf(stderr, "usage: %s layout | dump FILE\n", argv[0]);
  return 2;
}
