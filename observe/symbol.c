/* SPDX-License-Identifier: MIT */
/*
 * observe/symbol.c — naming code addresses for debug output: the return
 * addresses of a task's backtrace become "function+0xoff (object)".
 *
 * dladdr() alone is not enough. It searches only the dynamic symbol table,
 * which holds exported names; coev is built with -fvisibility=hidden and
 * programs are rarely linked with -rdynamic, so static functions, coev's
 * own internals and most of the program's functions would print as bare
 * addresses. Those names are in the object file's .symtab unless it was
 * stripped. So dladdr1() is asked only which object holds the address (its
 * path, map start and, through RTLD_DL_LINKMAP, its load bias l_addr), and
 * this file maps that file read-only, finds SHT_SYMTAB (SHT_DYNSYM when
 * stripped) and its string table through the section headers, and takes
 * the function symbol that contains the address. Failing that, the nearest
 * function symbol before it in the same executable section is taken only
 * when its size is 0 (unknown, as for assembly without .size): past the
 * end of a sized function the address is in one the table does not list
 * (a static function of a stripped library, such as the strlen variant
 * an IFUNC chose), and naming it after its neighbour would mislead; the
 * "(object+0xoff)" form is printed instead, as dladdr would. The main
 * program is read through /proc/self/exe: dladdr names it by argv[0],
 * which may be relative or false. Addresses are turned into file addresses
 * by subtracting l_addr, which is 0 for ET_EXEC and the load address for
 * ET_DYN (PIE and shared objects), so both kinds take one path.
 *
 * Rejected: libunwind, libbfd, libdw or running addr2line, because coev's
 * dependency list is fixed (libev, libck) and a debug aid must not fork or
 * need tools at run time. read() into malloc'd buffers, because a symbol
 * table is megabytes in large programs; a read-only mapping shares the page
 * cache, only the pages scanned become resident, and mappings are not heap
 * blocks that LeakSanitizer would report at exit. DWARF line tables: too
 * much code for a debug aid; `addr2line -e object 0xoff` turns the
 * "(object+0xoff)" form into a line afterwards.
 *
 * Cache: up to CACHE_SLOTS objects, keyed by map start and path, stay
 * mapped for the life of the process. This retention is deliberate and
 * bounded (at most CACHE_SLOTS file mappings, whose pages belong to the
 * page cache); past that, slots are reused round-robin and the old mapping
 * is unmapped. A file that cannot be read or parsed is cached as such, so
 * it is not opened again for every frame. One mutex guards the cache and
 * every lookup, since a reused slot unmaps what a lookup reads; debug
 * output is never hot. For the same reason a lookup scans the symbol table
 * linearly (some microseconds for libc's few thousand dynamic symbols)
 * rather than keep a sorted copy, which would be heap memory to free.
 *
 * Limits: ELF64 in the host's byte order only (little-endian on x86_64 and
 * aarch64); other files get the dladdr forms. Every offset and size read
 * from the file is checked against the file's size before use. The file is
 * read from disk, so an object rebuilt in place after it was loaded gives
 * wrong names, and one truncated while mapped raises SIGBUS when read
 * (installers replace files by rename, which leaves the mapped inode
 * whole). An object dlopen'ed by a relative path is looked for relative to
 * the current directory. Paths of PATH_BYTES or more are not read. Not
 * async-signal-safe. The one caller in a signal handler, the stack overflow
 * report (sched/stack.c), goes through coev__symbol_name_try, which never
 * waits for the cache's lock and never mallocs: a process that is about to
 * die of SIGSEGV may open and map its own executable, but not deadlock.
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sched/internal.h"
#include "symbol.h"

#define CACHE_SLOTS 16
#define PATH_BYTES 256

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_DATA ELFDATA2LSB
#else
#define HOST_DATA ELFDATA2MSB
#endif

/* One object file. path "" marks a free slot; map NULL a file that could
 * not be read or parsed. The pointers point into map. */
struct image {
	uintptr_t key; /* dli_fbase: where the object is mapped */
	char path[PATH_BYTES];
	const unsigned char *map;
	size_t size;
	const Elf64_Shdr *sh; /* the section headers */
	size_t nsh;
	const Elf64_Sym *sym; /* the symbol table */
	size_t nsym;
	const char *str; /* its string table; str[strsz - 1] == '\0' */
	size_t strsz;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct image cache[CACHE_SLOTS]; /* guarded by cache_lock */
static unsigned cache_next;		/* the next slot to reuse */

/* True when [off, off + len) lies in the file and off is aligned. */
static bool in_file(const struct image *im, uint64_t off, uint64_t len,
		    size_t align)
{
	return off <= im->size && len <= im->size - off && off % align == 0;
}

/* Takes the first section of the given type that is a well-formed symbol
 * table with a well-formed string table. */
static bool find_symtab(struct image *im, uint32_t type)
{
	for (size_t i = 0; i < im->nsh; i++) {
		const Elf64_Shdr *s = &im->sh[i], *t;

		if (s->sh_type != type || s->sh_entsize != sizeof(Elf64_Sym) ||
		    s->sh_link >= im->nsh ||
		    !in_file(im, s->sh_offset, s->sh_size, _Alignof(Elf64_Sym)))
			continue;
		t = &im->sh[s->sh_link];
		if (t->sh_type != SHT_STRTAB || t->sh_size == 0 ||
		    !in_file(im, t->sh_offset, t->sh_size, 1) ||
		    im->map[t->sh_offset + t->sh_size - 1] != '\0')
			continue;
		im->sym = (const Elf64_Sym *)(im->map + s->sh_offset);
		im->nsym = s->sh_size / sizeof(Elf64_Sym);
		im->str = (const char *)im->map + t->sh_offset;
		im->strsz = t->sh_size;
		return true;
	}
	return false;
}

/* Checks the ELF header and finds the section headers and a symbol
 * table. False for anything else, including extended section numbering
 * (e_shnum 0, used past 65279 sections). */
static bool parse(struct image *im)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)im->map;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != HOST_DATA ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    !in_file(im, eh->e_shoff,
		     (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr),
		     _Alignof(Elf64_Shdr)))
		return false;
	im->sh = (const Elf64_Shdr *)(im->map + eh->e_shoff);
	im->nsh = eh->e_shnum;
	return find_symtab(im, SHT_SYMTAB) || find_symtab(im, SHT_DYNSYM);
}

/* Maps and parses im->path; leaves im->map NULL when that fails. */
static void image_load(struct image *im)
{
	struct stat st;
	int fd = open(im->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size >= sizeof(Elf64_Ehdr) &&
	    (uint64_t)st.st_size <= SIZE_MAX) {
		void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
			       fd, 0);
		if (p != MAP_FAILED) {
			im->map = p;
			im->size = (size_t)st.st_size;
		}
	}
	close(fd);
	if (im->map && !parse(im)) {
		munmap((void *)im->map, im->size);
		im->map = NULL;
	}
}

/* The cached image of the object mapped at key from path, loading it into
 * a free or reused slot on first use. NULL when path is too long. Called
 * with cache_lock held. */
static struct image *image_get(uintptr_t key, const char *path)
{
	size_t n = strlen(path);
	struct image *im = NULL;

	if (n >= PATH_BYTES)
		return NULL;
	for (unsigned i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].path[0] == '\0') {
			if (!im)
				im = &cache[i];
		} else if (cache[i].key == key &&
			   strcmp(cache[i].path, path) == 0) {
			return &cache[i];
		}
	}
	if (!im) {
		im = &cache[cache_next];
		cache_next = (cache_next + 1) % CACHE_SLOTS;
		if (im->map)
			munmap((void *)im->map, im->size);
	}
	memset(im, 0, sizeof *im);
	im->key = key;
	memcpy(im->path, path, n + 1);
	image_load(im);
	return im;
}

/* The allocated, executable section holding the file address rel. */
static const Elf64_Shdr *text_section(const struct image *im, uint64_t rel)
{
	const uint64_t want = SHF_ALLOC | SHF_EXECINSTR;

	for (size_t i = 0; i < im->nsh; i++) {
		const Elf64_Shdr *s = &im->sh[i];
		if ((s->sh_flags & want) == want && rel >= s->sh_addr &&
		    rel - s->sh_addr < s->sh_size)
			return s;
	}
	return NULL;
}

/* Among aliases at one address, the global name reads best. */
static int bind_rank(const Elf64_Sym *s)
{
	switch (ELF64_ST_BIND(s->st_info)) {
	case STB_GLOBAL: return 2;
	case STB_WEAK: return 1;
	default: return 0;
	}
}

/*
 * The function symbol naming the file address rel: one whose
 * [st_value, st_value + st_size) contains rel, else the nearest one at or
 * before rel in rel's section if its size is 0 (unknown); the latest start
 * wins among several, then the strongest binding. NULL when rel is in no
 * executable section or no such symbol is found.
 */
static const Elf64_Sym *find_function(const struct image *im, uint64_t rel)
{
	const Elf64_Shdr *sec = text_section(im, rel);
	const Elf64_Sym *best = NULL;
	bool best_in = false;

	if (!sec)
		return NULL;
	for (size_t i = 0; i < im->nsym; i++) {
		const Elf64_Sym *s = &im->sym[i];
		int type = ELF64_ST_TYPE(s->st_info);

		if ((type != STT_FUNC && type != STT_GNU_IFUNC) ||
		    s->st_shndx == SHN_UNDEF || s->st_name == 0 ||
		    s->st_name >= im->strsz || s->st_value < sec->sh_addr ||
		    s->st_value > rel)
			continue;
		bool in = rel - s->st_value < s->st_size;
		if (!best || (in && !best_in) ||
		    (in == best_in && s->st_value > best->st_value) ||
		    (in == best_in && s->st_value == best->st_value &&
		     bind_rank(s) > bind_rank(best))) {
			best = s;
			best_in = in;
		}
	}
	return best && !best_in && best->st_size != 0 ? NULL : best;
}

/* What snprintf wrote into a buffer of len > 0 bytes. */
static size_t written(int n, size_t len)
{
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

/* Formats pc found in the object that dladdr1 described. Called with
 * cache_lock held: the name may point into a cached mapping. */
static int describe(uintptr_t pc, uintptr_t at, const Dl_info *di,
		    const struct link_map *lm, char *buf, size_t len)
{
	const char *path = lm->l_name[0] ? lm->l_name : "/proc/self/exe";
	const char *obj =
		di->dli_fname && di->dli_fname[0] ? di->dli_fname : path;
	const char *slash = strrchr(obj, '/');
	struct image *im = image_get((uintptr_t)di->dli_fbase, path);
	uintptr_t bias = lm->l_addr;

	if (slash)
		obj = slash + 1;
	if (im && im->map) {
		const Elf64_Sym *s = find_function(im, at - bias);
		if (s)
			return snprintf(buf, len, "%s+0x%" PRIxPTR " (%s)",
					im->str + s->st_name,
					pc - (bias + (uintptr_t)s->st_value),
					obj);
	}
	if (di->dli_sname && di->dli_saddr)
		return snprintf(buf, len, "%s+0x%" PRIxPTR " (%s)",
				di->dli_sname, pc - (uintptr_t)di->dli_saddr,
				obj);
	return snprintf(buf, len, "0x%" PRIxPTR " (%s+0x%" PRIxPTR ")", pc, obj,
			pc - bias);
}

size_t coev__symbolise(uintptr_t pc, bool ret_addr, char *buf, size_t len)
{
	uintptr_t at = ret_addr && pc > 0 ? pc - 1 : pc;
	void *extra = NULL;
	Dl_info di;
	int n;

	if (len == 0)
		return 0;
	if (!dladdr1((void *)at, &di, &extra, RTLD_DL_LINKMAP) || !extra)
		return written(snprintf(buf, len, "0x%" PRIxPTR, pc), len);
	pthread_mutex_lock(&cache_lock);
	n = describe(pc, at, &di, extra, buf, len);
	pthread_mutex_unlock(&cache_lock);
	return written(n, len);
}

uintptr_t coev__function_start(uintptr_t pc)
{
	void *extra = NULL;
	uintptr_t start = 0;
	struct image *im;
	Dl_info di;

	if (!dladdr1((void *)pc, &di, &extra, RTLD_DL_LINKMAP) || !extra)
		return 0;
	pthread_mutex_lock(&cache_lock);
	im = image_get((uintptr_t)di.dli_fbase,
		       ((struct link_map *)extra)->l_name[0]
			       ? ((struct link_map *)extra)->l_name
			       : "/proc/self/exe");
	if (im && im->map) {
		uintptr_t bias = ((struct link_map *)extra)->l_addr;
		const Elf64_Sym *s = find_function(im, pc - bias);

		if (s)
			start = bias + (uintptr_t)s->st_value;
	}
	pthread_mutex_unlock(&cache_lock);
	if (!start && di.dli_sname && di.dli_saddr)
		start = (uintptr_t)di.dli_saddr;
	return start;
}

/* The SIGSEGV handler's variant (sched/stack.c names an overflow): a busy
 * cache is not waited for, since the faulting thread may be the one that
 * holds it; dladdr's exported name is the fallback. */
size_t coev__symbol_name_try(uintptr_t pc, char *buf, size_t len)
{
	const char *name = NULL;
	void *extra = NULL;
	struct image *im;
	Dl_info di;
	bool locked;

	if (len == 0 || !dladdr1((void *)pc, &di, &extra, RTLD_DL_LINKMAP) ||
	    !extra)
		return 0;
	locked = pthread_mutex_trylock(&cache_lock) == 0;
	if (locked) {
		im = image_get((uintptr_t)di.dli_fbase,
			       ((struct link_map *)extra)->l_name[0]
				       ? ((struct link_map *)extra)->l_name
				       : "/proc/self/exe");
		if (im && im->map) {
			const Elf64_Sym *s = find_function(
				im, pc - ((struct link_map *)extra)->l_addr);
			if (s)
				name = im->str + s->st_name;
		}
	}
	if (!name)
		name = di.dli_sname;
	size_t n = name ? strnlen(name, len - 1) : 0;
	if (n)
		memcpy(buf, name, n);
	buf[n] = '\0';
	if (locked)
		pthread_mutex_unlock(&cache_lock);
	return n;
}
