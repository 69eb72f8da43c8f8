/** A tiny typed event emitter (no Node `events`, so the SDK runs in browsers). */
export class Emitter<E extends object> {
  private readonly listeners = new Map<keyof E, Set<(payload: never) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, fn: (payload: E[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as (payload: never) => void);
    return () => this.off(event, fn);
  }

  off<K extends keyof E>(event: K, fn: (payload: E[K]) => void): void {
    this.listeners.get(event)?.delete(fn as (payload: never) => void);
  }

  /** Resolves with the next payload of `event`. */
  once<K extends keyof E>(event: K): Promise<E[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (p) => {
        off();
        resolve(p);
      });
    });
  }

  protected emit<K extends keyof E>(event: K, payload: E[K]): void {
    for (const fn of [...(this.listeners.get(event) ?? [])]) {
      try {
        (fn as (p: E[K]) => void)(payload);
      } catch {
        /* a throwing listener must not break the SDK's own state machine */
      }
    }
  }
}
