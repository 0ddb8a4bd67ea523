/**
 * A guard that applies the relay's rate limits to gateway handlers (or HTTP routes). Mark a
 * handler with `@RelayRateLimit('send')`; unmarked handlers pass. Its steps are protected methods
 * a host can override, as in @nestjs/throttler: `getTracker` (who is charged), `getCost` (how
 * many points), `handleRequest` (the check) and `throwLimitException` (the refusal).
 */
import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  RelayRateLimiter,
  rateLimitedError,
  type RateLimitDecision,
  type RateLimitSubject,
} from './rate-limit.service.js';
import { RELAY_OPTIONS } from '../relay.constants.js';
import type { ResolvedRelayOptions } from '../relay.options.js';
import type { RateLimitBucket } from './rate-limit.options.js';

/** Metadata key of `@RelayRateLimit`. */
export const RELAY_RATE_LIMIT_BUCKET = 'usm-relay:rate-limit-bucket';

/**
 * Charges the decorated handler to a rate-limit bucket.
 *
 * @example
 * @UseGuards(RelayRateLimitGuard)
 * @RelayRateLimit('send')
 * @SubscribeMessage('send')
 * onSend(@ConnectedSocket() socket: Socket, @MessageBody() body: SendRequest) { ... }
 */
export const RelayRateLimit = (bucket: RateLimitBucket): MethodDecorator & ClassDecorator =>
  SetMetadata(RELAY_RATE_LIMIT_BUCKET, bucket);

/** The parts of a socket.io socket the guard reads (structural, so any adapter's socket fits). */
interface SocketLike {
  data?: { address?: string };
  handshake?: { address?: string; headers?: Record<string, string | string[] | undefined> };
}

interface RequestLike {
  ip?: string;
  headers?: Record<string, string | string[] | undefined>;
  socket?: { remoteAddress?: string };
  user?: { address?: string };
}

export interface RateLimitRequest {
  context: ExecutionContext;
  bucket: RateLimitBucket;
  subject: RateLimitSubject;
  cost: number;
}

@Injectable()
export class RelayRateLimitGuard implements CanActivate {
  constructor(
    protected readonly limiter: RelayRateLimiter,
    protected readonly reflector: Reflector,
    @Inject(RELAY_OPTIONS) protected readonly options: Pick<ResolvedRelayOptions, 'rateLimits'>,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const bucket = this.reflector.getAllAndOverride<RateLimitBucket | undefined>(RELAY_RATE_LIMIT_BUCKET, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (!bucket) return true;
    const subject = await this.getTracker(context);
    return this.handleRequest({ context, bucket, subject, cost: this.getCost(context, bucket) });
  }

  /**
   * Who is charged: the socket's authenticated address (`socket.data.address`, set by the
   * handshake) and its network address (the socket's remote address, or with `trustProxy` the last
   * X-Forwarded-For entry).
   */
  protected getTracker(context: ExecutionContext): Promise<RateLimitSubject> | RateLimitSubject {
    if (context.getType() === 'ws') {
      const socket = context.switchToWs().getClient<SocketLike>();
      return {
        identity: socket.data?.address,
        address: this.networkAddress(socket.handshake?.headers, socket.handshake?.address),
      };
    }
    const req = context.switchToHttp().getRequest<RequestLike>();
    return {
      identity: req.user?.address,
      address: this.networkAddress(req.headers, req.ip ?? req.socket?.remoteAddress),
    };
  }

  /** Points a request costs: the number of envelopes of a `{ envelopes: [...] }` payload, else 1. */
  protected getCost(context: ExecutionContext, _bucket: RateLimitBucket): number {
    if (context.getType() !== 'ws') return 1;
    const data = context.switchToWs().getData<{ envelopes?: unknown } | undefined>();
    const n = Array.isArray(data?.envelopes) ? data.envelopes.length : 1;
    return Math.max(1, n);
  }

  protected async handleRequest(request: RateLimitRequest): Promise<boolean> {
    const decision = await this.limiter.consume(request.bucket, request.subject, request.cost);
    if (!decision.allowed) this.throwLimitException(request.context, decision);
    return true;
  }

  /** Throws RelayError(RATE_LIMITED) with `retryAfterMs`; the gateway's filter sends it. */
  protected throwLimitException(
    _context: ExecutionContext,
    decision: Extract<RateLimitDecision, { allowed: false }>,
  ): never {
    throw rateLimitedError(decision);
  }

  private networkAddress(
    headers: Record<string, string | string[] | undefined> | undefined,
    remote: string | undefined,
  ): string | undefined {
    if (this.options.rateLimits.trustProxy) {
      const raw = headers?.['x-forwarded-for'];
      const xff = (Array.isArray(raw) ? raw.join(',') : (raw ?? '')).split(',').map((s) => s.trim());
      const last = xff.filter(Boolean).pop();
      if (last) return last;
    }
    return remote;
  }
}
