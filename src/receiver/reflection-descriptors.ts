// The file descriptors server reflection hands out, made whole. @grpc/proto-loader builds them
// from protobufjs (grpc-node issue #2595): no file lists the files it imports, type names are
// relative, a map field's entry type is named after the field without protoc's "Entry" suffix,
// and reserved ranges end one short (protobufjs's inclusive end where descriptors' is exclusive). Reflection clients that build the descriptors (grpcurl's describe and calls, grpcui,
// Postman: the Go and C++ protobuf runtimes) refuse them, so only listing the services worked.
import type { PackageDefinition } from '@grpc/proto-loader';
import descriptor from 'protobufjs/ext/descriptor/index.js';

interface Field { name: string; typeName?: string | undefined }
interface Range { start?: number; end?: number }
interface Message { name: string; field?: Field[]; nestedType?: Message[]; enumType?: { name: string }[]; options?: { mapEntry?: boolean }; reservedRange?: Range[]; extensionRange?: Range[] }
interface Method { inputType?: string | undefined; outputType?: string | undefined }
interface File { name: string; package?: string; dependency?: string[]; messageType?: Message[]; enumType?: { name: string }[]; service?: { name: string; method?: Method[] }[] }

const FileDescriptorProto = (descriptor as unknown as { FileDescriptorProto: { decode(b: Uint8Array): File; encode(f: File): { finish(): Uint8Array } } }).FileDescriptorProto;

/** protoc's name of a map field's entry type: the field name in CamelCase, then "Entry". */
function mapEntryName(field: string): string {
  return field.replace(/(?:^|_)([a-z0-9])/g, (_m, c: string) => c.toUpperCase()) + 'Entry';
}

/** A package definition whose file descriptors (the only part ReflectionService reads) are whole. */
export function reflectionDefinition(pkg: PackageDefinition): PackageDefinition {
  const files = new Map<string, File>();
  for (const def of Object.values(pkg)) {
    const protos = (def as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    for (const bin of protos ?? []) {
      const file = FileDescriptorProto.decode(bin);
      if (!files.has(file.name)) files.set(file.name, file);
    }
  }
  // Map entries first, under protoc's names (the fields refer to them relatively, by the old name);
  // ranges with their exclusive ends.
  const renameEntries = (m: Message): void => {
    for (const r of [...(m.reservedRange ?? []), ...(m.extensionRange ?? [])]) if (r.end !== undefined) r.end += 1;
    for (const nested of m.nestedType ?? []) {
      renameEntries(nested);
      if (!nested.options?.mapEntry) continue;
      const field = m.field?.find((f) => f.typeName === nested.name || f.typeName?.endsWith('.' + nested.name));
      if (!field) continue;
      nested.name = mapEntryName(field.name);
      field.typeName = nested.name;
    }
  };
  for (const file of files.values()) file.messageType?.forEach(renameEntries);
  // Every type by its full name, and the file that holds it.
  const holder = new Map<string, File>();
  const index = (scope: string, file: File, m: { name: string; nestedType?: Message[]; enumType?: { name: string }[] }): void => {
    const fqn = `${scope}.${m.name}`;
    holder.set(fqn, file);
    m.nestedType?.forEach((n) => index(fqn, file, n));
    m.enumType?.forEach((e) => holder.set(`${fqn}.${e.name}`, file));
  };
  for (const file of files.values()) {
    const pkgScope = file.package ? '.' + file.package : '';
    file.messageType?.forEach((m) => index(pkgScope, file, m));
    file.enumType?.forEach((e) => holder.set(`${pkgScope}.${e.name}`, file));
  }
  /** A type name as protoc writes it (fully qualified), resolved from scope as C++ names are; the file that holds it becomes a dependency. */
  const resolve = (name: string | undefined, scope: string, file: File): string | undefined => {
    if (!name) return name;
    let full: string | undefined;
    if (name.startsWith('.')) full = name;
    else {
      for (let s = scope; full === undefined; s = s.slice(0, Math.max(0, s.lastIndexOf('.')))) {
        if (holder.has(`${s}.${name}`)) full = `${s}.${name}`;
        if (s === '') break;
      }
    }
    const target = full === undefined ? undefined : holder.get(full);
    if (target === undefined) return name;
    if (target !== file) {
      file.dependency ??= [];
      if (!file.dependency.includes(target.name)) file.dependency.push(target.name);
    }
    return full;
  };
  const link = (scope: string, file: File, m: Message): void => {
    const fqn = `${scope}.${m.name}`;
    for (const f of m.field ?? []) f.typeName = resolve(f.typeName, fqn, file);
    m.nestedType?.forEach((n) => link(fqn, file, n));
  };
  for (const file of files.values()) {
    const pkgScope = file.package ? '.' + file.package : '';
    file.messageType?.forEach((m) => link(pkgScope, file, m));
    for (const s of file.service ?? []) {
      for (const method of s.method ?? []) {
        method.inputType = resolve(method.inputType, pkgScope, file);
        method.outputType = resolve(method.outputType, pkgScope, file);
      }
    }
  }
  const fileDescriptorProtos = [...files.values()].map((f) => Buffer.from(FileDescriptorProto.encode(f).finish()));
  return { descriptors: { format: 'Protocol Buffer 3 FileDescriptorProto', type: {}, fileDescriptorProtos } } as unknown as PackageDefinition;
}
