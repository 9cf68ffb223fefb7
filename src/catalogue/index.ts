// Placeholder: the catalogue helper replaces this file (see its brief).
export {};
