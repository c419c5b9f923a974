// What ./scripts/demo shows; replaced step by step as the toolchain grows (see README).
console.log("ultravisor demo: nothing to show yet");
