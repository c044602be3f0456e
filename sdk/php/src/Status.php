<?php

declare(strict_types=1);

namespace Grconnect;

/** The states of a connection (Connection::$status holds the value). */
enum Status: string
{
    case Active = 'active';
    case RefreshFailing = 'refresh_failing';
    case NeedsReconnect = 'needs_reconnect';
    case Disconnected = 'disconnected';
}
