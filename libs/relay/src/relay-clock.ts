import { Inject } from '@nestjs/common';
import { type Clock, systemClock } from '@usm/protocol';

/**
 * The relay's time source. Everything with a TTL or an expiry (mail, replay nonces, cleanup
 * cut-offs) reads time from it, so tests move time instead of sleeping.
 *
 * @example
 * // in a test: a clock the test moves by hand
 * let now = Date.UTC(2026, 10, 25);
 * Test.createTestingModule({ imports: [MessengerRelayModule.forRoot(opts)] })
 *   .overrideProvider(RelayClock).useValue({ now: () => now });
 */
export type RelayClock = Clock;

/** DI token of the clock; the default is the system clock. */
export const RelayClock = Symbol('RelayClock');

/** Injects the relay's clock. */
export const InjectRelayClock = (): ParameterDecorator => Inject(RelayClock);

/** The system clock (the protocol's). */
export { systemClock };
