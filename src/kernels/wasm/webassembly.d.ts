// The few WebAssembly JS-API types this backend uses. TypeScript only ships them in lib.dom /
// lib.webworker, which this Node-targeted project does not load (tsconfig "lib": ["ES2022"]).
// If "DOM" is ever added to the lib list, delete this file.

declare namespace WebAssembly {
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  interface Memory {
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  var Memory: { prototype: Memory; new (descriptor: MemoryDescriptor): Memory };
  interface Global {
    value: unknown;
  }
  interface Instance {
    readonly exports: Record<string, unknown>;
  }
  var Instance: { prototype: Instance; new (module: Module, imports?: Record<string, Record<string, unknown>>): Instance };
  // biome-ignore lint/suspicious/noEmptyInterface: the opaque WebAssembly.Module type, declared as lib.dom does
  interface Module {}
  var Module: { prototype: Module; exports(module: Module): { name: string; kind: string }[] };
  interface WebAssemblyInstantiatedSource {
    instance: Instance;
    module: Module;
  }
  function instantiate(
    bytes: ArrayBuffer | ArrayBufferView,
    imports?: Record<string, Record<string, unknown>>,
  ): Promise<WebAssemblyInstantiatedSource>;
  function validate(bytes: ArrayBuffer | ArrayBufferView): boolean;
}
