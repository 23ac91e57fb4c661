//! Loading programs: ELF parsing and validation (`elf`), and the initial
//! stack with argv, envp and the auxiliary vector (`stack`).

pub mod elf;
pub mod stack;
